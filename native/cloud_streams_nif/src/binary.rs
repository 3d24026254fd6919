//! BEAM binaries handed to Rust without copying: the term is kept alive in its own env and
//! its bytes are read in place (a refc binary's data never moves).

use bytes::Bytes;
use rustler::{Binary, Encoder, Env, NifResult, OwnedBinary, OwnedEnv, Term};

/// Below this size a copy is cheaper than an env.
const COPY_BELOW: usize = 4096;

struct BeamBytes {
    _env: OwnedEnv,
    ptr: *const u8,
    len: usize,
}

// The bytes are immutable and owned by `_env`, which is Send.
unsafe impl Send for BeamBytes {}
unsafe impl Sync for BeamBytes {}

impl AsRef<[u8]> for BeamBytes {
    fn as_ref(&self) -> &[u8] {
        // Valid while `_env` holds the term.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The bytes of a binary term, shared with the BEAM rather than copied when large.
pub fn to_bytes<'a>(_env: Env<'a>, term: Term<'a>) -> NifResult<Bytes> {
    let binary: Binary = term.decode()?;
    if binary.len() < COPY_BELOW {
        return Ok(Bytes::copy_from_slice(&binary));
    }
    let owned = OwnedEnv::new();
    let saved = owned.save(term);
    let (ptr, len) = owned.run(|env| {
        let binary: Binary = saved.load(env).decode().expect("decoded above");
        (binary.as_ptr(), binary.len())
    });
    Ok(Bytes::from_owner(BeamBytes {
        _env: owned,
        ptr,
        len,
    }))
}

/// A VM binary holding a copy of `bytes` (for results built on tokio threads).
pub fn to_term<'a>(env: Env<'a>, bytes: &[u8]) -> Term<'a> {
    let mut owned = OwnedBinary::new(bytes.len());
    owned.as_mut_slice().copy_from_slice(bytes);
    owned.release(env).encode(env)
}
