//! Compiled automations, cached by content.
//!
//! The automations of a project are read fresh for every event, so a change made through the
//! API (in this process or another) takes effect on the next event. What is cached is only the
//! compilation of each one (its filter tree and regexes), keyed by id and kept only while the
//! stored automation is equal to the one compiled: an edit, however small, recompiles.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::automation::Automation;
use crate::domain::names::ObjectId;
use crate::engine::matching::CompiledAutomation;

/// Beyond this many entries the cache starts over: deleted automations leave entries behind.
const MAX_ENTRIES: usize = 20_000;

#[derive(Default)]
pub struct CompiledCache {
    entries: Mutex<HashMap<ObjectId, Arc<CompiledAutomation>>>,
}

impl CompiledCache {
    /// The compiled form of `automation`, or None when it no longer compiles (logged: specs are
    /// validated at save time, so this is stored data gone bad, and the automation is skipped
    /// rather than holding up every other automation of the project).
    pub fn compiled(&self, automation: Automation) -> Option<Arc<CompiledAutomation>> {
        {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(hit) = entries.get(&automation.id)
                && hit.automation == automation
            {
                return Some(Arc::clone(hit));
            }
        }
        let id = automation.id.clone();
        match CompiledAutomation::compile(automation) {
            Ok(compiled) => {
                let compiled = Arc::new(compiled);
                let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(id, Arc::clone(&compiled));
                Some(compiled)
            }
            Err(e) => {
                tracing::error!(automation_id = %id, field = %e.field(), error = %e, "stored automation does not compile; skipped");
                None
            }
        }
    }
}
