//! Registry transfer events as progress events: the registry client reports
//! per-blob [`TransferEvent`]s, displays and logs speak [`Event`].

use crate::progress::Event;
use crate::registry::{SkipReason, TransferEvent};

/// The progress event for a registry transfer event, for pushes and pulls
/// alike (pass `&|e| sink.emit(&transfer_event(e))` as the client's progress).
pub fn transfer_event(e: TransferEvent) -> Event {
    match e {
        TransferEvent::Started { digest, size } => Event::TransferStarted { digest, size },
        TransferEvent::Progress { digest, done, size } => {
            Event::TransferProgress { digest, done, size }
        }
        TransferEvent::Skipped {
            digest,
            size,
            reason,
        } => Event::TransferSkipped {
            digest,
            size,
            reason: match reason {
                SkipReason::Exists => "exists".to_string(),
                SkipReason::Mounted { from } => format!("mounted from {from}"),
                SkipReason::Cached => "cached".to_string(),
            },
        },
        TransferEvent::Retrying {
            digest,
            attempt,
            resume_at,
            reason,
        } => Event::TransferRetrying {
            digest,
            attempt,
            resume_at,
            reason,
        },
        TransferEvent::Done { digest, size } => Event::TransferDone { digest, size },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn skip_reasons_read_as_words() {
        let digest = Digest::of(b"b");
        let e = transfer_event(TransferEvent::Skipped {
            digest: digest.clone(),
            size: 3,
            reason: SkipReason::Mounted {
                from: "org/base".into(),
            },
        });
        assert_eq!(
            e,
            Event::TransferSkipped {
                digest,
                size: 3,
                reason: "mounted from org/base".into()
            }
        );
    }
}
