//! The shared space: encoders that put text and images into one vector space. For now, the
//! readers their weights need.

pub mod pth;
