//! crossmodal: speech, text and images in one shared embedding space.
//!
//! The binary is a thin CLI and window over these modules; tests drive the same code.

pub mod audio;
pub mod commands;
pub mod dictate;
pub mod engine;
pub mod gallery;
pub mod gui;
pub mod hotkey;
pub mod live;
pub mod media;
pub mod model_store;
pub mod space;
pub mod speech;
#[cfg(unix)]
pub mod toggle;
pub mod typing;
