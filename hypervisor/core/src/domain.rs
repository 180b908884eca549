//! Domains: what the hypervisor keeps for each guest, and how one ends.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use hypercall_abi::memory::memory_consts::INVALID_FRAME;

use crate::console::ConsoleLines;
use crate::event_channel::EventChannels;
use crate::vcpu::{BounceError, IretError, Vcpu};

use crate::addr::Mfn;
use crate::frame_table::{Fate, Leaked, Released};
use crate::grant_table::GrantTable;
use crate::guest_memory::AddressSpace;
use crate::machine::MachineMemory;
use crate::phys::PhysMemory;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u32);

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{}", self.0)
    }
}

/// A CPU exception raised by guest code that the domain could not handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestFault {
    pub vector: u8,
    pub error_code: u64,
    pub rip: u64,
    /// The faulting address, for page faults.
    pub cr2: Option<u64>,
}

/// The mnemonic of an exception vector (`#GP`), or `"vector"` for others.
pub fn exception_name(vector: u8) -> &'static str {
    const NAMES: [&str; 21] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
        "#GP", "#PF", "RSVD", "#MF", "#AC", "#MC", "#XM", "#VE",
    ];
    NAMES.get(usize::from(vector)).copied().unwrap_or("vector")
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (vector {}, error {:#x}) at rip {:#x}", exception_name(self.vector), self.vector, self.error_code, self.rip)?;
        if let Some(cr2) = self.cr2 {
            write!(f, ", address {cr2:#x}")?;
        }
        Ok(())
    }
}

/// How a domain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `sched_shutdown(Poweroff, code)`.
    Poweroff(u32),
    /// `sched_shutdown(Reboot, code)`; restarting is left to the toolstack.
    Reboot(u32),
    /// `sched_shutdown(Crash, code)`.
    Crash(u32),
    /// Stopped by the hypervisor for an exception it had nowhere to send.
    Fault(GuestFault),
    /// Crashed by the hypervisor: the guest broke its side of the ABI in a
    /// way no error can be returned for.
    Killed(KillReason),
}

/// Why the hypervisor crashed a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillReason {
    /// A bounce could not be delivered: the guest's double fault.
    DoubleFault { what: Bounced, why: BounceError },
    /// `iret` with a frame that breaks rule C2.
    BadIret(IretError),
}

/// What was being bounced to the guest kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bounced {
    Exception(u8),
    Syscall,
    Event,
}

impl fmt::Display for KillReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillReason::DoubleFault { what, why } => {
                match what {
                    Bounced::Exception(v) => write!(f, "double fault: cannot bounce {} (vector {v}): ", exception_name(*v))?,
                    Bounced::Syscall => write!(f, "double fault: cannot bounce a user syscall: ")?,
                    Bounced::Event => write!(f, "double fault: cannot bounce an event upcall: ")?,
                }
                match why {
                    BounceError::NoKernelStack => write!(f, "no kernel stack"),
                    BounceError::FrameUnwritable { at } => write!(f, "frame at {at:#x} not writable"),
                }
            }
            KillReason::BadIret(e) => match e {
                IretError::Unreadable { rsp } => write!(f, "bad iret: frame at {rsp:#x} unreadable"),
                IretError::BadSelector { cs, ss } => write!(f, "bad iret: selectors cs {cs:#x} ss {ss:#x}"),
                IretError::BadAddress { rip, rsp } => write!(f, "bad iret: rip {rip:#x} rsp {rsp:#x}"),
                IretError::NoUserBase => write!(f, "bad iret: to user mode without a user base pointer"),
            },
        }
    }
}

impl Outcome {
    /// Whether this is an orderly power-off with status 0.
    pub fn is_clean(&self) -> bool {
        *self == Outcome::Poweroff(0)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Poweroff(c) => write!(f, "powered off (code {c})"),
            Outcome::Reboot(c) => write!(f, "asked to reboot (code {c})"),
            Outcome::Crash(c) => write!(f, "crashed (code {c})"),
            Outcome::Fault(fault) => write!(f, "stopped: {fault}"),
            Outcome::Killed(why) => write!(f, "crashed by the hypervisor: {why}"),
        }
    }
}

/// A built domain.
pub struct Domain {
    pub id: DomainId,
    pub name: String,
    /// Frames the domain owns now, its shared-info page aside.
    pub nr_pages: u64,
    /// The most frames it may own (`reservation_increase` stops there).
    pub max_pages: u64,
    /// Its shared-info page (SPEC §8): owned, typed `SharedInfo` for the
    /// domain's whole life, outside its pseudo-physical space.
    pub shared_info: Mfn,
    /// Its vCPUs, by id; boxed so the entry code's pointer to a running
    /// one's `EntryState` stays valid while the domain table changes.
    pub vcpus: Vec<alloc::boxed::Box<Vcpu>>,
    pub events: EventChannels,
    /// Its grant table, the grants of it others use, and its own grant
    /// mappings of others' frames.
    pub grants: GrantTable,
    /// Its vCPUs' partial console lines.
    pub console: ConsoleLines,
}

impl Domain {
    /// The address space vCPU `vcpu`'s hypercall pointers are read in: its
    /// kernel base pointer.
    pub fn space(&self, vcpu: usize) -> AddressSpace {
        self.vcpus[vcpu].kernel_space()
    }

    /// Releases every frame and reference of the domain: every vCPU's base
    /// pointers, the shared-info registration, every pin (which takes every
    /// page table down), then every frame, which goes back to the allocator
    /// with its m2p entry invalidated. Returns the frames freed; a frame
    /// that something still refers to is reported and kept (a bug, never a
    /// guest's doing).
    ///
    /// Its grant mappings of others' frames must be gone already
    /// (`grant_table::release_domain`); its own frames others still reach
    /// through its grants are orphaned, freed when their last grant use
    /// goes.
    pub fn teardown(self, machine: &mut MachineMemory, mem: &mut impl PhysMemory) -> Result<Released, Leaked> {
        let frames = &mut machine.frames;
        for vcpu in &self.vcpus {
            if vcpu.initialised {
                frames.release_base(vcpu.kernel_base(), mem);
            }
            if let Some(user) = vcpu.user_base() {
                frames.release_base(user, mem);
            }
        }
        frames.release_special(self.shared_info, mem);
        for &mfn in self.grants.frames() {
            frames.release_special(mfn, mem);
        }
        frames.unpin_all(self.id, mem);
        let (allocator, m2p) = (&mut machine.allocator, &machine.m2p);
        frames.release_all(self.id, |mfn, fate| {
            m2p.set(mem, mfn, INVALID_FRAME);
            if fate == Fate::Freed {
                allocator.free(mfn).expect("a domain's frame came from the allocator");
            }
        })
    }
}
