//! A flat and plain value read back from its pickle without an unpickler: the opcodes
//! [`super::writer`] writes, with the pickle machine's meaning (`Lib/pickle.py`'s `load_*`).
//! Anything else — another opcode, a second frame, a stack or memo out of order, a string
//! that is not UTF-8, a value Python refuses — is declined, and `pickle.loads` reads the
//! stream instead: declining is always safe, so this only ever gives what `pickle.loads`
//! gives. `tests/test_plain_pickle.py` holds the two against each other, also on damaged
//! streams.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyFrozenSet, PyList, PySet, PyString, PyTuple};
use smallvec::SmallVec;

use super::opcodes::*;

/// The value `stream` pickles, if it is made of the opcodes a flat and plain value's pickle
/// is made of; `None` leaves it to `pickle.loads`.
pub(crate) fn read<'py>(py: Python<'py>, stream: &[u8]) -> Option<Bound<'py, PyAny>> {
    let body = framed_body(stream)?;
    let mut machine = Machine {
        stack: SmallVec::new(),
        marks: SmallVec::new(),
        memo: SmallVec::new(),
    };
    let mut at = 0;
    loop {
        let op = *body.get(at)?;
        at += 1;
        let mut take = |n: usize| {
            let bytes = body.get(at..at.checked_add(n)?)?;
            at += n;
            Some(bytes)
        };
        match op {
            STOP => {
                // The whole stream, one value, every mark closed.
                let whole = at == body.len() && machine.marks.is_empty();
                return (whole && machine.stack.len() == 1).then(|| machine.stack.pop())?;
            }
            NONE => machine.push(py.None().into_bound(py)),
            NEWTRUE => machine.push(PyBool::new(py, true).to_owned().into_any()),
            NEWFALSE => machine.push(PyBool::new(py, false).to_owned().into_any()),
            BININT1 => machine.push(take(1)?[0].into_pyobject(py).ok()?.into_any()),
            BININT2 => {
                let le = take(2)?;
                machine.push(
                    u16::from_le_bytes([le[0], le[1]])
                        .into_pyobject(py)
                        .ok()?
                        .into_any(),
                );
            }
            BININT => {
                let le: [u8; 4] = take(4)?.try_into().ok()?;
                machine.push(i32::from_le_bytes(le).into_pyobject(py).ok()?.into_any());
            }
            LONG1 => {
                let len = usize::from(take(1)?[0]);
                let int = twos_complement(take(len)?)?;
                machine.push(int.into_pyobject(py).ok()?.into_any());
            }
            BINFLOAT => {
                let be: [u8; 8] = take(8)?.try_into().ok()?;
                machine.push(PyFloat::new(py, f64::from_be_bytes(be)).into_any());
            }
            SHORT_BINUNICODE => {
                let len = usize::from(take(1)?[0]);
                machine.push(string(py, take(len)?)?);
            }
            BINUNICODE => {
                let le: [u8; 4] = take(4)?.try_into().ok()?;
                let len = usize::try_from(u32::from_le_bytes(le)).ok()?;
                machine.push(string(py, take(len)?)?);
            }
            MEMOIZE => {
                let top = machine.top()?.clone();
                machine.memo.push(top);
            }
            BINGET => {
                let index = usize::from(take(1)?[0]);
                let object = machine.memo.get(index)?.clone();
                machine.push(object);
            }
            MARK => machine.marks.push(machine.stack.len()),
            EMPTY_DICT => machine.push(PyDict::new(py).into_any()),
            EMPTY_LIST => machine.push(PyList::empty(py).into_any()),
            EMPTY_TUPLE => machine.push(PyTuple::empty(py).into_any()),
            EMPTY_SET => machine.push(PySet::empty(py).ok()?.into_any()),
            SETITEM => {
                let item = machine.pop()?;
                let key = machine.pop()?;
                machine
                    .top()?
                    .cast_exact::<PyDict>()
                    .ok()?
                    .set_item(key, item)
                    .ok()?;
            }
            SETITEMS => {
                let from = machine.close_mark()?;
                let items = &machine.stack[from..];
                if !items.len().is_multiple_of(2) {
                    return None;
                }
                let dict = machine.below(from)?.cast_exact::<PyDict>().ok()?;
                for pair in items.chunks_exact(2) {
                    dict.set_item(&pair[0], &pair[1]).ok()?;
                }
                machine.stack.truncate(from);
            }
            APPEND => {
                let item = machine.pop()?;
                machine
                    .top()?
                    .cast_exact::<PyList>()
                    .ok()?
                    .append(item)
                    .ok()?;
            }
            APPENDS => {
                let from = machine.close_mark()?;
                let list = machine.below(from)?.cast_exact::<PyList>().ok()?;
                for item in &machine.stack[from..] {
                    list.append(item).ok()?;
                }
                machine.stack.truncate(from);
            }
            ADDITEMS => {
                let from = machine.close_mark()?;
                let set = machine.below(from)?.cast_exact::<PySet>().ok()?;
                for item in &machine.stack[from..] {
                    set.add(item).ok()?;
                }
                machine.stack.truncate(from);
            }
            TUPLE1..=TUPLE3 => {
                let from = machine
                    .stack
                    .len()
                    .checked_sub(usize::from(op - TUPLE1 + 1))?;
                let tuple = machine.collect(from, |items| PyTuple::new(py, items))?;
                machine.push(tuple.into_any());
            }
            TUPLE => {
                let from = machine.close_mark()?;
                let tuple = machine.collect(from, |items| PyTuple::new(py, items))?;
                machine.push(tuple.into_any());
            }
            FROZENSET => {
                let from = machine.close_mark()?;
                let set = machine.collect(from, |items| PyFrozenSet::new(py, items))?;
                machine.push(set.into_any());
            }
            _ => return None,
        }
    }
}

/// The opcodes after `PROTO 5` and the one frame, if the stream has that shape.
fn framed_body(stream: &[u8]) -> Option<&[u8]> {
    let rest = stream.strip_prefix(&[PROTO, PROTOCOL])?;
    match rest.split_first() {
        Some((&FRAME, rest)) => {
            let (len, body) = rest.split_first_chunk::<8>()?;
            (u64::from_le_bytes(*len) == body.len() as u64).then_some(body)
        }
        _ => Some(rest),
    }
}

/// `LONG1`'s little-endian two's-complement bytes, if they fit 64 bits.
fn twos_complement(le: &[u8]) -> Option<i64> {
    if le.len() > 8 {
        return None;
    }
    let fill = if le.last().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut bytes = [fill; 8];
    bytes[..le.len()].copy_from_slice(le);
    Some(i64::from_le_bytes(bytes))
}

/// A string from UTF-8 (`pickle` also takes encoded lone surrogates: left to it).
fn string<'py>(py: Python<'py>, utf8: &[u8]) -> Option<Bound<'py, PyAny>> {
    Some(PyString::new(py, std::str::from_utf8(utf8).ok()?).into_any())
}

/// The pickle machine's state: one stack, where each open mark fences off the items below
/// it (`pickle` keeps a stack per mark), and the memo. Inline up to a small value's sizes.
struct Machine<'py> {
    stack: SmallVec<[Bound<'py, PyAny>; 16]>,
    /// Where each open mark's items start on the stack.
    marks: SmallVec<[usize; 4]>,
    memo: SmallVec<[Bound<'py, PyAny>; 16]>,
}

impl<'py> Machine<'py> {
    fn push(&mut self, object: Bound<'py, PyAny>) {
        self.stack.push(object);
    }

    /// Where the innermost open mark's items start: nothing below is reachable.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn top(&self) -> Option<&Bound<'py, PyAny>> {
        (self.stack.len() > self.fence()).then(|| self.stack.last())?
    }

    fn pop(&mut self) -> Option<Bound<'py, PyAny>> {
        (self.stack.len() > self.fence()).then(|| self.stack.pop())?
    }

    /// Closes the innermost open mark: where its items start (they stay until taken).
    fn close_mark(&mut self) -> Option<usize> {
        self.marks.pop()
    }

    /// The object right below the items from `from` on, if it is reachable.
    fn below(&self, from: usize) -> Option<&Bound<'py, PyAny>> {
        (from > self.fence()).then(|| self.stack.get(from - 1))?
    }

    /// An object made of the items from `from` on (all reachable), which it takes.
    fn collect<T>(
        &mut self,
        from: usize,
        make: impl FnOnce(&[Bound<'py, PyAny>]) -> PyResult<T>,
    ) -> Option<T> {
        if from < self.fence() {
            return None;
        }
        let made = make(&self.stack[from..]).ok()?;
        self.stack.truncate(from);
        Some(made)
    }
}
