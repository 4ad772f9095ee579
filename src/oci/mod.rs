//! The image model: digests, references, media types, descriptors, platforms and the raw-bytes
//! image (manifest + config documents, blobs behind [`blob::BlobSource`]).

pub mod blob;
pub mod convert;
pub mod descriptor;
pub mod digest;
pub mod image;
pub mod media;
pub mod platform;
pub mod reference;
