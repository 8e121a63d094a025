//! The Containerfile (Dockerfile) front end: a second language that lowers
//! into the same build plan as recipes.
//!
//! [`parse`] reads the text into a [`Containerfile`] (directives,
//! continuations, heredocs, instructions and their flags) with line:column
//! errors; [`words`] processes words (quote removal and `$VAR`,
//! `${VAR:-default}`, `${VAR:+alt}` expansion) as Docker does;
//! [`crate::plan::containerfile`] (per stage, once build arguments and the
//! base image are known) turns a stage into plan steps. [`render`] writes a tree back as text that parses
//! to the same tree (positions and `text` aside).

pub mod ast;
mod flags;
mod glob;
mod heredoc;
mod instructions;
mod lexer;
mod mounts;
mod parse;
mod render;
mod suggest;
pub mod words;

#[cfg(test)]
mod tests;

pub use ast::*;
pub use render::{normalized, render, same_ignoring_positions};

/// Parses the text of a Containerfile (Dockerfile). `path` names the file in
/// errors (`FILE:LINE:COLUMN: message`). Words stay raw (quotes and `$`
/// references as written); [`words`] processes them at lowering.
pub fn parse(text: &str, path: &std::path::Path) -> Result<Containerfile, ContainerfileError> {
    parse::parse(text, path)
}

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

impl ContainerfileError {
    /// `message` at `pos` of `file`.
    pub fn at(file: &Containerfile, pos: Pos, message: String) -> ContainerfileError {
        ContainerfileError {
            file: file.path.display().to_string(),
            line: pos.line,
            column: pos.column,
            message,
        }
    }
}
