//! Shared set-up for the suites.

#![allow(dead_code)]

pub mod app;
pub mod process;
pub mod stores;

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

/// Declares `case` once per backend with the `Backend` as its argument, for suites that build a
/// `TestApp` (possibly with a tweaked configuration): `per_backend! { async fn x(backend) {..} }`.
#[allow(unused_macros)]
macro_rules! per_backend {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $(#[$meta])*
            async fn case($backend: crate::common::stores::Backend) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                case(crate::common::stores::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn aws() {
                case(crate::common::stores::Backend::Aws).await
            }
        }
    };
}
