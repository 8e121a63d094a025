//! The fake-root seccomp filter for single-id namespaces (Charliecloud's
//! approach): with only one id mapped, `chown` to another id fails with
//! EINVAL, dropping privileges fails, and device nodes cannot be made, so
//! package managers abort. The filter answers those calls with success
//! (errno 0) and does nothing; files stay owned by the user.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::error::SandboxError;

/// Syscalls faked unconditionally: ownership and identity changes.
const FAKED: &[i64] = &[
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chown,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lchown,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_setuid,
    libc::SYS_setgid,
    libc::SYS_setreuid,
    libc::SYS_setregid,
    libc::SYS_setresuid,
    libc::SYS_setresgid,
    libc::SYS_setfsuid,
    libc::SYS_setfsgid,
    libc::SYS_setgroups,
];

/// File-type bits of a mode, and the two device types.
const S_IFMT: u64 = libc::S_IFMT as u64;
const DEVICE_TYPES: [u64; 2] = [libc::S_IFCHR as u64, libc::S_IFBLK as u64];

/// Builds and installs the filter on the calling thread; it is inherited by
/// every process the step starts. Sets `no_new_privs`, which is harmless
/// here: setuid binaries cannot gain anything with one id mapped.
pub(crate) fn install_fake_root() -> Result<(), SandboxError> {
    let program = fake_root_program()?;
    seccompiler::apply_filter(&program).map_err(|e| SandboxError::Seccomp {
        reason: e.to_string(),
    })
}

fn fake_root_program() -> Result<BpfProgram, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Seccomp {
        reason: e.to_string(),
    };
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| err(&e))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        FAKED.iter().map(|&nr| (nr, Vec::new())).collect();
    // mknod(path, mode, dev) and mknodat(dirfd, path, mode, dev): fake only
    // device nodes, so fifos, sockets and plain files are still created.
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_mknod, device_rules(1)?);
    rules.insert(libc::SYS_mknodat, device_rules(2)?);
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(0), arch)
        .map_err(|e| err(&e))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))
}

/// Rules matching a mode argument (at `arg`) that asks for a device node.
fn device_rules(arg: u8) -> Result<Vec<SeccompRule>, SandboxError> {
    DEVICE_TYPES
        .iter()
        .map(|&kind| {
            let condition = SeccompCondition::new(
                arg,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::MaskedEq(S_IFMT),
                kind,
            )?;
            SeccompRule::new(vec![condition])
        })
        .collect::<Result<_, _>>()
        .map_err(|e| SandboxError::Seccomp {
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_architecture() {
        let program = fake_root_program().unwrap();
        assert!(program.len() > FAKED.len());
    }
}
