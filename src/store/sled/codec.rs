//! How a record is held on sled: a JSON envelope (`{"v":1,"data":…}`), and
//! when it is long enough to gain, that envelope compressed as one zstd
//! frame. A frame starts with zstd's magic number and JSON text with `{`,
//! so reading tells them apart without a marker, and records written
//! before compression read unchanged.
//!
//! Compression works record by record (level 1, contexts reused per
//! thread) with a dictionary trained on this store's own records
//! (`records.zdict`, built by `benches/dictionary.rs` from conversations
//! of the interpreter's development set): the field names, enum values,
//! template titles and reply phrasing every record repeats are in it, so
//! even a 200-byte trigger shrinks, and a chat reply or a plan to about a
//! third. A frame names the dictionary it was written with; frames written
//! without one (before it existed) read unchanged. A shipped dictionary is
//! never edited: a new one gets a new id and is added beside it.

use super::StoreError;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::OnceLock;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    v: u32,
    data: T,
}

pub(super) const FORMAT: u32 = 1;

/// The first four bytes of every zstd frame.
const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Envelopes shorter than this stay JSON (a frame's header and the
/// dictionary's id would outweigh the gain).
const PACK_FROM: usize = 64;
/// The most a stored frame may hold: a larger claim is a damaged record,
/// refused before any memory is set aside for it.
const MAX_RECORD: u64 = 64 << 20;
const LEVEL: i32 = 1;

/// The dictionary records are written with.
const RECORDS: &[u8] = include_bytes!("records.zdict");

fn records_id() -> u32 {
    static ID: OnceLock<u32> = OnceLock::new();
    *ID.get_or_init(|| zstd::zstd_safe::get_dict_id_from_dict(RECORDS).map_or(0, |id| id.get()))
}

fn encoder_dictionary() -> &'static EncoderDictionary<'static> {
    static DICT: OnceLock<EncoderDictionary<'static>> = OnceLock::new();
    DICT.get_or_init(|| EncoderDictionary::copy(RECORDS, LEVEL))
}

fn decoder_dictionary() -> &'static DecoderDictionary<'static> {
    static DICT: OnceLock<DecoderDictionary<'static>> = OnceLock::new();
    DICT.get_or_init(|| DecoderDictionary::copy(RECORDS))
}

thread_local! {
    static PACKER: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    /// For frames written with the records' dictionary.
    static UNPACKER: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    /// For frames written without one.
    static PLAIN_UNPACKER: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
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
            *cell = zstd::bulk::Compressor::with_prepared_dictionary(encoder_dictionary()).ok();
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
    type Make = fn() -> std::io::Result<zstd::bulk::Decompressor<'static>>;
    let (unpacker, make): (_, Make) = match zstd::zstd_safe::get_dict_id_from_frame(bytes).map(|id| id.get()) {
        None => (&PLAIN_UNPACKER, zstd::bulk::Decompressor::new),
        Some(id) if id == records_id() => (&UNPACKER, || {
            zstd::bulk::Decompressor::with_prepared_dictionary(decoder_dictionary())
        }),
        Some(id) => {
            return Err(format!(
                "a record compressed with dictionary {id}, which this build does not have"
            ));
        }
    };
    unpacker.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.is_none() {
            *cell = Some(make().map_err(|e| e.to_string())?);
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
    fn a_trigger_sized_record_is_compressed_with_the_dictionary_it_names() {
        let trigger = json!({"id": "due:p1:orientation", "user": "user-1", "fire_at": "2026-12-03T09:00:00Z",
            "created_at": "2026-12-02T10:43:48.281739061Z", "kind": "step_due", "plan_id": "p1",
            "step_id": "orientation", "due_at": "2026-12-04T09:00:00Z"});
        let json = serde_json::to_vec(&Envelope {
            v: FORMAT,
            data: &trigger,
        })
        .unwrap();
        let stored = encode(&trigger).unwrap();
        assert!(stored.starts_with(&MAGIC));
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&stored).map(|id| id.get()),
            Some(records_id())
        );
        assert!(records_id() != 0);
        // With the dictionary even a record this short stores in under half
        // its JSON (before it, records under 256 bytes were kept as JSON).
        assert!(
            stored.len() * 2 < json.len(),
            "{} of {} bytes",
            stored.len(),
            json.len()
        );
        assert_eq!(decode::<Value>("timers", &stored).unwrap(), trigger);
    }

    /// Records on disk name this dictionary: replacing the file (say, by
    /// running `DICT_OUT=… cargo bench --bench dictionary` over it) would
    /// make every stored record unreadable. A new dictionary goes beside
    /// it, with its own id.
    #[test]
    fn the_shipped_dictionary_is_the_one_stores_were_written_with() {
        assert_eq!(records_id(), 661_597_004, "records.zdict was replaced");
        assert_eq!(RECORDS.len(), 32 * 1024);
    }

    #[test]
    fn a_frame_written_without_the_dictionary_still_reads() {
        let record = json!({"text": "compressed before the dictionary existed ".repeat(10)});
        let json = serde_json::to_vec(&Envelope {
            v: FORMAT,
            data: &record,
        })
        .unwrap();
        let old = zstd::bulk::compress(&json, 1).unwrap();
        assert_eq!(zstd::zstd_safe::get_dict_id_from_frame(&old), None);
        assert_eq!(decode::<Value>("messages", &old).unwrap(), record);
    }

    #[test]
    fn a_frame_naming_a_dictionary_this_build_lacks_is_a_corrupt_record() {
        // The same dictionary under another id: a frame from a later build.
        let mut other = RECORDS.to_vec();
        other[4..8].copy_from_slice(&(records_id() ^ 1).to_le_bytes());
        let json = serde_json::to_vec(&Envelope {
            v: FORMAT,
            data: json!({"text": "x".repeat(300)}),
        })
        .unwrap();
        let frame = zstd::bulk::Compressor::with_dictionary(1, &other)
            .unwrap()
            .compress(&json)
            .unwrap();
        let err = decode::<Value>("plans", &frame).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { tree: "plans", .. }), "{err}");
        assert!(err.to_string().contains("dictionary"), "{err}");
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
