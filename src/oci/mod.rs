//! The image model: digests, references, media types, descriptors and the raw-bytes image
//! (manifest + config + blobs behind [`blob::BlobSource`]).

pub mod blob;
pub mod digest;
pub mod image;
pub mod reference;
