pub mod retry;
pub mod sender;
pub mod signature;
pub mod ssrf;
