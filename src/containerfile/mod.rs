//! The Containerfile (Dockerfile) front end: a second language that lowers
//! into the same build plan as recipes.
//!
//! [`parse`] reads the text into a [`Containerfile`] (directives,
//! continuations, heredocs, instructions and their flags) with line:column
//! errors; [`words`] processes words (quote removal and `$VAR`,
//! `${VAR:-default}`, `${VAR:+alt}` expansion) as Docker does; `lower`
//! (per stage, once build arguments and the base image are known) turns a
//! stage into plan steps.

pub mod ast;

pub use ast::*;

/// A problem with a Containerfile, at a position in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ContainerfileError {
    /// The file as the caller named it.
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// What is wrong and what to do, one line.
    pub message: String,
}
