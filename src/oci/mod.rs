//! The image model: digests, references, media types, descriptors, platforms and the raw-bytes
//! image (manifest + config documents, blobs behind [`blob::BlobSource`]).

pub(crate) mod blob;
pub(crate) mod convert;
pub(crate) mod descriptor;
pub(crate) mod digest;
pub(crate) mod image;
pub mod media;
pub(crate) mod platform;
pub(crate) mod reference;
pub(crate) mod referrer;

pub use blob::{read_all, BlobSource, ByteStream, LocalBlob, Source, SpooledFile};
pub use descriptor::Descriptor;
pub use digest::sha256;
pub use image::{check_manifest, Doc, Image, Root};
pub use platform::Platform;
pub use reference::{ImageRef, RegistryRef};
