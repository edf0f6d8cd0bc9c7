//! How a record is held on sled: a JSON envelope (`{"v":1,"data":…}`), and
//! when it is long enough to gain, that envelope compressed as one zstd
//! frame. A frame starts with zstd's magic number and JSON text with `{`,
//! so reading tells them apart without a marker, and records written
//! before compression read unchanged.
//!
//! Compression works record by record (level 1, contexts reused per
//! thread): a chat reply or a plan shrinks to about half, while short
//! records (a user's "yes") stay as JSON, where a frame's header would
//! outweigh the gain.

use super::StoreError;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::borrow::Cow;
use std::cell::RefCell;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    data: T,
}

pub(super) const FORMAT: u32 = 1;

/// The first four bytes of every zstd frame.
const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Envelopes shorter than this stay JSON.
const PACK_FROM: usize = 256;
/// The most a stored frame may hold: a larger claim is a damaged record,
/// refused before any memory is set aside for it.
const MAX_RECORD: u64 = 64 << 20;
const LEVEL: i32 = 1;

thread_local! {
    static PACKER: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static UNPACKER: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    let json =
        serde_json::to_vec(&Envelope { v: FORMAT, data: value }).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(pack(json))
}

pub(super) fn decode<T: DeserializeOwned>(tree: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { tree, reason };
    let json = unpack(bytes).map_err(corrupt)?;
    let env: Envelope<T> = serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))?;
    if env.v != FORMAT {
        return Err(corrupt(format!("unknown format version {}", env.v)));
    }
    Ok(env.data)
}

/// `json` as it is stored: compressed when that makes it smaller.
pub(super) fn pack(json: Vec<u8>) -> Vec<u8> {
    if json.len() < PACK_FROM {
        return json;
    }
    let packed = PACKER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = zstd::bulk::Compressor::new(LEVEL).ok();
        }
        cell.as_mut()?.compress(&json).ok()
    });
    match packed {
        Some(packed) if packed.len() < json.len() => packed,
        // Compression that fails or gains nothing leaves the JSON as is.
        _ => json,
    }
}

/// The JSON a stored value holds: itself, or its frame decompressed.
pub(super) fn unpack(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    if !bytes.starts_with(&MAGIC) {
        return Ok(Cow::Borrowed(bytes));
    }
    let size = match zstd::zstd_safe::get_frame_content_size(bytes) {
        Ok(Some(size)) if size <= MAX_RECORD => size,
        Ok(Some(size)) => return Err(format!("a compressed record claims {size} bytes")),
        _ => return Err("a compressed record without a readable size".into()),
    };
    let capacity = usize::try_from(size).map_err(|e| e.to_string())?;
    UNPACKER.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
        }
        let unpacker = cell.as_mut().ok_or("no decompressor")?;
        let json = unpacker
            .decompress(bytes, capacity)
            .map_err(|e| format!("a compressed record does not decompress: {e}"))?;
        Ok(Cow::Owned(json))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn long_records_are_stored_compressed_and_short_ones_as_json() {
        let long = json!({"text": "Order the laptop and test the hardware. ".repeat(20)});
        let stored = encode(&long).unwrap();
        assert!(stored.starts_with(&MAGIC), "a long record is compressed");
        assert!(stored.len() < serde_json::to_vec(&long).unwrap().len() / 2);
        assert_eq!(decode::<Value>("messages", &stored).unwrap(), long);

        let short = json!({"text": "yes"});
        let stored = encode(&short).unwrap();
        assert_eq!(stored.first(), Some(&b'{'), "a short record stays JSON");
        assert_eq!(decode::<Value>("messages", &stored).unwrap(), short);
    }

    #[test]
    fn a_record_written_before_compression_still_reads() {
        let old = br#"{"v":1,"data":{"text":"from an older store"}}"#;
        assert_eq!(
            decode::<Value>("messages", old).unwrap(),
            json!({"text": "from an older store"})
        );
    }

    #[test]
    fn a_damaged_or_oversized_frame_is_a_corrupt_record_not_a_panic() {
        let mut stored = encode(&json!({"text": "x".repeat(2000)})).unwrap();
        let cut = stored.len() / 2;
        stored.truncate(cut);
        assert!(matches!(
            decode::<Value>("plans", &stored),
            Err(StoreError::Corrupt { tree: "plans", .. })
        ));
        // A frame header that claims far more than any record holds.
        let huge = zstd::bulk::compress(&vec![b' '; (MAX_RECORD + 1) as usize], 1).unwrap();
        let err = decode::<Value>("plans", &huge).unwrap_err();
        assert!(err.to_string().contains("claims"), "{err}");
    }
}
