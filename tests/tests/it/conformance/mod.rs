//! One conformance suite for both backends: every case runs on SQLite and on AWS (moto), and
//! both must behave the same way (DESIGN §10).

/// Declares `case` once per backend: `mod case { fn sqlite(); fn aws(); }`.
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($stores:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn case($stores: crate::common::stores::Stores) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                case(crate::common::stores::Stores::new(crate::common::stores::Backend::Sqlite).await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn aws() {
                case(crate::common::stores::Stores::new(crate::common::stores::Backend::Aws).await).await
            }
        }
    };
}

mod queue;
mod secrets;
mod table;
