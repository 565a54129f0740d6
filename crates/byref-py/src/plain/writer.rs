//! `pickle.dumps(value, protocol=5)` of a flat and plain value, written byte for byte as
//! CPython's C pickler writes it (`Modules/_pickle.c`: `dump`, `save` and the `save_*` of each
//! type): the same opcodes, the same memo, one frame. The same bytes are the same key, so a
//! value hashes alike whichever of the two pickled it; `tests/test_plain_pickle.py` holds the
//! two against each other.
//!
//! Here because the C pickler's own setup (a pickler object, its memo table and output
//! buffer, a call through Python) cost more than pickling a small value does.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple};

use super::FLAT_MAX;
use super::opcodes::*;

/// A flat and plain value's pickle.
pub(crate) enum Plain {
    Written(Vec<u8>),
    /// A case left to the C pickler: an int beyond 64 bits, a string with a lone surrogate,
    /// a value of a frame's size or more.
    LeftToPickler,
}

/// Where the frame's header goes: after `PROTO 5`, an opcode and an 8-byte length.
const FRAME_AT: usize = 2;
const FRAME_HEADER: usize = 9;
/// The pickler frames its output only if the frame holds at least this many bytes
/// (`FRAME_SIZE_MIN`), and may start a second frame once one reaches `FRAME_SIZE_TARGET`:
/// values whose pickle reaches that are left to it.
const FRAME_MIN: usize = 4;
const FRAME_TARGET: usize = 64 * 1024;
/// Where the output would be long enough for a second frame.
const FRAME_END: usize = FRAME_AT + FRAME_HEADER + FRAME_TARGET;

/// `value`'s pickle if it is flat and plain (a scalar, or a short dict, list, tuple, set or
/// frozenset of scalars): pickled the same with or without byref's pickler hooks.
pub(crate) fn write(value: &Bound<'_, PyAny>) -> Option<Plain> {
    let mut writer = Writer {
        out: Vec::with_capacity(64),
        memo: Vec::new(),
        left_to_pickler: false,
    };
    writer.out.extend_from_slice(&[PROTO, PROTOCOL]);
    writer.out.resize(FRAME_AT + FRAME_HEADER, 0);
    if !writer.scalar(value) {
        writer.container(value)?;
    }
    Some(writer.finish())
}

struct Writer {
    out: Vec<u8>,
    /// The memoized objects' addresses, by memo index (a value's own objects stay alive while
    /// it is written: nothing here runs Python code).
    memo: Vec<usize>,
    /// Met a case left to the C pickler: from there on, only checks that the value is plain.
    left_to_pickler: bool,
}

impl Writer {
    /// Writes `value` if it is a scalar; false if it is not one.
    fn scalar(&mut self, value: &Bound<'_, PyAny>) -> bool {
        if value.is_none() {
            self.out.push(NONE);
        } else if let Ok(flag) = value.cast_exact::<PyBool>() {
            self.out
                .push(if flag.is_true() { NEWTRUE } else { NEWFALSE });
        } else if value.is_exact_instance_of::<PyInt>() {
            match value.extract::<i64>() {
                Ok(int) => self.int(int),
                Err(_) => self.left_to_pickler = true,
            }
        } else if let Ok(float) = value.cast_exact::<PyFloat>() {
            self.out.push(BINFLOAT);
            self.out.extend_from_slice(&float.value().to_be_bytes());
        } else if let Ok(string) = value.cast_exact::<PyString>() {
            self.string(string);
        } else {
            return false;
        }
        true
    }

    /// `save_long`: 4 bytes or fewer for what fits in 32 bits signed, else the fewest
    /// two's-complement bytes.
    fn int(&mut self, int: i64) {
        if let Ok(small) = i32::try_from(int) {
            let le = small.to_le_bytes();
            if le[2] != 0 || le[3] != 0 {
                self.out.push(BININT);
                self.out.extend_from_slice(&le);
            } else if le[1] != 0 {
                self.out.push(BININT2);
                self.out.extend_from_slice(&le[..2]);
            } else {
                self.out.extend_from_slice(&[BININT1, le[0]]);
            }
            return;
        }
        let bits = 64 - int.unsigned_abs().leading_zeros() as usize;
        let mut len = bits / 8 + 1;
        // Wide enough for 2^63's nine bytes, which the trim makes eight.
        let le = i128::from(int).to_le_bytes();
        if int < 0 && le[len - 1] == 0xff && le[len - 2] & 0x80 != 0 {
            len -= 1;
        }
        self.out.extend_from_slice(&[LONG1, len as u8]);
        self.out.extend_from_slice(&le[..len]);
    }

    /// `save_unicode`: a reference to the same string object written before, else its UTF-8
    /// bytes, memoized.
    fn string(&mut self, string: &Bound<'_, PyString>) {
        if self.left_to_pickler || self.reference(string.as_any()) {
            return;
        }
        let Ok(utf8) = string.to_str() else {
            self.left_to_pickler = true;
            return;
        };
        if self.out.len() + utf8.len() >= FRAME_END {
            self.left_to_pickler = true;
            return;
        }
        match u8::try_from(utf8.len()) {
            Ok(len) => self.out.extend_from_slice(&[SHORT_BINUNICODE, len]),
            Err(_) => {
                self.out.push(BINUNICODE);
                self.out
                    .extend_from_slice(&(utf8.len() as u32).to_le_bytes());
            }
        }
        self.out.extend_from_slice(utf8.as_bytes());
        self.memoize(string.as_any());
    }

    /// Writes a `BINGET` of `object` if it was memoized: whether it was.
    fn reference(&mut self, object: &Bound<'_, PyAny>) -> bool {
        let address = object.as_ptr() as usize;
        let Some(index) = self.memo.iter().position(|&a| a == address) else {
            return false;
        };
        // A flat value memoizes far fewer than 256 objects (more would need LONG_BINGET).
        match u8::try_from(index) {
            Ok(index) => self.out.extend_from_slice(&[BINGET, index]),
            Err(_) => self.left_to_pickler = true,
        }
        true
    }

    fn memoize(&mut self, object: &Bound<'_, PyAny>) {
        self.memo.push(object.as_ptr() as usize);
        self.out.push(MEMOIZE);
    }

    /// Each item, a scalar.
    fn items<'py>(&mut self, items: impl Iterator<Item = Bound<'py, PyAny>>) -> Option<()> {
        for item in items {
            if !self.scalar(&item) {
                return None;
            }
        }
        Some(())
    }

    /// A short dict, list, tuple, set or frozenset of scalars, as `save_dict`, `save_list`,
    /// `save_tuple`, `save_set` and `save_frozenset` write it (one batch: `FLAT_MAX` is below
    /// the pickler's 1000).
    fn container(&mut self, value: &Bound<'_, PyAny>) -> Option<()> {
        if let Ok(dict) = value.cast_exact::<PyDict>() {
            self.short(dict.len())?;
            self.out.push(EMPTY_DICT);
            self.memoize(value);
            let items = dict.iter().flat_map(|(key, item)| [key, item]);
            self.appended(dict.len(), items, SETITEM, SETITEMS)?;
        } else if let Ok(list) = value.cast_exact::<PyList>() {
            self.short(list.len())?;
            self.out.push(EMPTY_LIST);
            self.memoize(value);
            self.appended(list.len(), list.iter(), APPEND, APPENDS)?;
        } else if let Ok(tuple) = value.cast_exact::<PyTuple>() {
            self.short(tuple.len())?;
            if tuple.is_empty() {
                self.out.push(EMPTY_TUPLE);
                return Some(());
            }
            if tuple.len() > 3 {
                self.out.push(MARK);
            }
            self.items(tuple.iter())?;
            self.out.push(match tuple.len() {
                len @ 1..=3 => TUPLE1 + len as u8 - 1,
                _ => TUPLE,
            });
            self.memoize(value);
        } else if let Ok(set) = value.cast_exact::<PySet>() {
            self.short(set.len())?;
            self.out.push(EMPTY_SET);
            self.memoize(value);
            if !set.is_empty() {
                self.out.push(MARK);
                self.items(set.iter())?;
                self.out.push(ADDITEMS);
            }
        } else if let Ok(set) = value.cast_exact::<PyFrozenSet>() {
            self.short(set.len())?;
            self.out.push(MARK);
            self.items(set.iter())?;
            self.out.push(FROZENSET);
            self.memoize(value);
        } else {
            return None;
        }
        Some(())
    }

    /// A dict's or a list's items: one followed by `one`, several between a mark and `many`.
    fn appended<'py>(
        &mut self,
        len: usize,
        items: impl Iterator<Item = Bound<'py, PyAny>>,
        one: u8,
        many: u8,
    ) -> Option<()> {
        if len > 1 {
            self.out.push(MARK);
        }
        self.items(items)?;
        match len {
            0 => {}
            1 => self.out.push(one),
            _ => self.out.push(many),
        }
        Some(())
    }

    /// Containers longer than [`FLAT_MAX`] are not checked item by item: not plain.
    fn short(&self, len: usize) -> Option<()> {
        (len <= FLAT_MAX).then_some(())
    }

    /// `STOP`, and the frame's header where the pickler writes one (`_Pickler_CommitFrame`).
    fn finish(mut self) -> Plain {
        if self.left_to_pickler || self.out.len() >= FRAME_END {
            return Plain::LeftToPickler;
        }
        self.out.push(STOP);
        let frame_len = self.out.len() - FRAME_AT - FRAME_HEADER;
        if frame_len >= FRAME_MIN {
            self.out[FRAME_AT] = FRAME;
            self.out[FRAME_AT + 1..FRAME_AT + FRAME_HEADER]
                .copy_from_slice(&(frame_len as u64).to_le_bytes());
        } else {
            self.out.drain(FRAME_AT..FRAME_AT + FRAME_HEADER);
        }
        Plain::Written(self.out)
    }
}
