//! Snapshots of what kernels say, in insta's file format so `cargo insta
//! review` works on them, stored once where every kernel agrees and per
//! kernel line (`name@6.1.snap`) only where one differs.

mod store;

pub use store::{Observation, Outcome, SnapshotStore, UpdateMode};
