//! The partner probe (`s2spec probe`): finds out how a live XMPP server
//! federates, by playing the administrator's proxy for our domain against
//! it in both roles, then predicts with the oracle which of our 11 valid
//! partner configurations federate with it, by which method, each way.
//!
//! - [`observe`]: the live exchanges (trials as initiating server, trials as
//!   receiving server at `--listen`), reported as plain data;
//! - [`infer`]: pure inference of the server's possible settings and the
//!   predictions;
//! - [`render`]: text, JSON, the partner-set entry and the PowerShell command.

pub mod infer;
pub mod observe;
pub mod render;
