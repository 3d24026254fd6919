//! Every core error becomes the same map, `%{kind:, message:, retryable:, status:, path:,
//! code:, cancellation_reasons:, applied:}`; the Elixir error modules build their structs
//! from it (`CloudStreams.Exception`).

use crate::atoms;
use cloud_streams_core::Error;
use rustler::{Atom, Encoder, Env, Term};

pub fn encode<'a>(env: Env<'a>, error: &Error) -> Term<'a> {
    let kind = Atom::from_str(env, error.kind.as_str()).expect("kind names are valid atoms");
    let status = match error.status {
        Some(code) => code.encode(env),
        None => atoms::nil().encode(env),
    };
    let path = match &error.path {
        Some(path) => path.encode(env),
        None => atoms::nil().encode(env),
    };
    let code = match &error.code {
        Some(code) => code.encode(env),
        None => atoms::nil().encode(env),
    };
    let reasons = match &error.cancellation_reasons {
        Some(reasons) => reasons
            .iter()
            .map(|reason| {
                rustler::term_map!(env, {
                    atoms::code() => reason.code.as_str(),
                    atoms::kind() => Atom::from_str(env, reason.kind.as_str()).expect("kind names are valid atoms"),
                    atoms::message() => reason.message.as_deref(),
                })
            })
            .collect::<Vec<Term>>()
            .encode(env),
        None => atoms::nil().encode(env),
    };
    rustler::term_map!(env, {
        atoms::kind() => kind,
        atoms::message() => error.message.as_str(),
        atoms::retryable() => error.retryable,
        atoms::status() => status,
        atoms::path() => path,
        atoms::code() => code,
        Atom::from_str(env, "cancellation_reasons").expect("atom") => reasons,
        Atom::from_str(env, "applied").expect("atom") => error.applied,
    })
}
