//! A guest's view of events and time: the shared-info page, the event
//! calls, and system time read from the vCPU's time record.

use core::ptr::{addr_of, addr_of_mut, read_volatile};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use hypercall_abi::call::{hypercall0, hypercall1, hypercall2, hypercall3};
use hypercall_abi::event::EvtchnStatus;
use hypercall_abi::shared_info::{SharedInfo, VcpuTimeInfo};
use hypercall_abi::{Error, Hypercall};

use crate::hypercall::result;
use crate::StartInfo;

static SHARED_INFO: AtomicU64 = AtomicU64::new(0);

/// Finds the shared-info page (mapped by the builder, section 7.1).
pub fn init(start: &StartInfo) {
    SHARED_INFO.store(crate::start_info_ext(start).shared_info_va, Ordering::SeqCst);
}

/// The shared-info page.
pub fn shared_info() -> *mut SharedInfo {
    let p = SHARED_INFO.load(Ordering::SeqCst);
    assert!(p != 0, "event::init first");
    p as *mut SharedInfo
}

fn byte(p: *mut u8) -> &'static AtomicU8 {
    // SAFETY: `p` points into the shared-info page, mapped for the life of
    // the domain; the hypervisor changes it concurrently, so it is only
    // touched atomically.
    unsafe { AtomicU8::from_ptr(p) }
}

fn word(p: *mut u64) -> &'static AtomicU64 {
    // SAFETY: as for `byte`; the words are 8-byte aligned.
    unsafe { AtomicU64::from_ptr(p) }
}

/// `vcpu_info[vcpu].upcall_mask`: the virtual interrupt flag.
pub fn set_masked(vcpu: usize, masked: bool) {
    // SAFETY: only the address of the field is formed.
    byte(unsafe { addr_of_mut!((*shared_info()).vcpu_info[vcpu].upcall_mask) }).store(u8::from(masked), Ordering::SeqCst);
}

pub fn masked(vcpu: usize) -> bool {
    // SAFETY: as above.
    byte(unsafe { addr_of_mut!((*shared_info()).vcpu_info[vcpu].upcall_mask) }).load(Ordering::SeqCst) != 0
}

pub fn upcall_pending(vcpu: usize) -> bool {
    // SAFETY: as above.
    byte(unsafe { addr_of_mut!((*shared_info()).vcpu_info[vcpu].upcall_pending) }).load(Ordering::SeqCst) != 0
}

/// Clears `upcall_pending` and takes `pending_sel` (the start of every
/// upcall handler).
pub fn take_pending_sel(vcpu: usize) -> u64 {
    // SAFETY: as above.
    let (pending, sel) = unsafe {
        (addr_of_mut!((*shared_info()).vcpu_info[vcpu].upcall_pending), addr_of_mut!((*shared_info()).vcpu_info[vcpu].pending_sel))
    };
    byte(pending).store(0, Ordering::SeqCst);
    word(sel).swap(0, Ordering::SeqCst)
}

fn bit(port: u32) -> (usize, u64) {
    ((port / 64) as usize, 1 << (port % 64))
}

pub fn is_pending(port: u32) -> bool {
    let (w, b) = bit(port);
    // SAFETY: as above.
    word(unsafe { addr_of_mut!((*shared_info()).evtchn_pending[w]) }).load(Ordering::SeqCst) & b != 0
}

/// Clears `port`'s pending bit; returns whether it was set.
pub fn clear_pending(port: u32) -> bool {
    let (w, b) = bit(port);
    // SAFETY: as above.
    word(unsafe { addr_of_mut!((*shared_info()).evtchn_pending[w]) }).fetch_and(!b, Ordering::SeqCst) & b != 0
}

/// Sets or clears `port`'s mask bit directly (unmasking a port that may be
/// pending must use `unmask` instead).
pub fn set_port_masked(port: u32, masked: bool) {
    let (w, b) = bit(port);
    // SAFETY: as above.
    let m = word(unsafe { addr_of_mut!((*shared_info()).evtchn_mask[w]) });
    if masked {
        m.fetch_or(b, Ordering::SeqCst);
    } else {
        m.fetch_and(!b, Ordering::SeqCst);
    }
}

/// The vCPU's time record, read with the version protocol.
pub fn time_record(vcpu: usize) -> VcpuTimeInfo {
    loop {
        // SAFETY: the record is in the shared-info page; the version
        // protocol makes a torn read visible.
        let p = unsafe { addr_of!((*shared_info()).vcpu_info[vcpu].time) };
        // SAFETY: as above.
        let v1 = unsafe { read_volatile(addr_of!((*p).version)) };
        core::sync::atomic::fence(Ordering::SeqCst);
        // SAFETY: as above.
        let r = unsafe { read_volatile(p) };
        core::sync::atomic::fence(Ordering::SeqCst);
        // SAFETY: as above.
        let v2 = unsafe { read_volatile(addr_of!((*p).version)) };
        if v1 % 2 == 0 && v1 == v2 {
            return r;
        }
    }
}

/// System time now, in ns (section 8.2).
pub fn now() -> u64 {
    let r = time_record(0);
    // SAFETY: lfence orders rdtsc after the record's reads; rdtsc is
    // allowed in ring 3.
    let tsc = unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    };
    r.ns_at(tsc)
}

/// The wall clock: (seconds, nanoseconds) at system time 0.
pub fn wallclock() -> (u64, u32) {
    loop {
        // SAFETY: as for `time_record`.
        let w = unsafe { addr_of!((*shared_info()).wallclock) };
        // SAFETY: as above.
        let v1 = unsafe { read_volatile(addr_of!((*w).version)) };
        // SAFETY: as above.
        let r = unsafe { read_volatile(w) };
        // SAFETY: as above.
        let v2 = unsafe { read_volatile(addr_of!((*w).version)) };
        if v1 % 2 == 0 && v1 == v2 {
            return (r.sec, r.nsec);
        }
    }
}

fn port(r: Result<u64, Error>) -> Result<u32, Error> {
    r.map(|p| u32::try_from(p).expect("ports fit 32 bits"))
}

pub fn alloc_unbound(remote: u32) -> Result<u32, Error> {
    port(result(hypercall1(Hypercall::EvtchnAllocUnbound.number(), u64::from(remote))))
}

pub fn bind_interdomain(remote: u32, remote_port: u32) -> Result<u32, Error> {
    port(result(hypercall2(Hypercall::EvtchnBindInterdomain.number(), u64::from(remote), u64::from(remote_port))))
}

/// Binds to `remote_port` of domain `remote` as soon as that domain has
/// allocated it for us (until then the call answers `Busy`: yield and try
/// again); any other error ends the test.
pub fn connect(remote: u32, remote_port: u32) -> u32 {
    loop {
        match bind_interdomain(remote, remote_port) {
            Ok(p) => return p,
            Err(Error::Busy) => {
                sched_yield().unwrap();
            }
            Err(e) => crate::failure(format_args!("bind_interdomain d{} port {}: {:?}", remote, remote_port, e)),
        }
    }
}

pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32, Error> {
    port(result(hypercall2(Hypercall::EvtchnBindVirq.number(), u64::from(virq), u64::from(vcpu))))
}

pub fn bind_ipi(vcpu: u32) -> Result<u32, Error> {
    port(result(hypercall1(Hypercall::EvtchnBindIpi.number(), u64::from(vcpu))))
}

pub fn send(port: u32) -> Result<u64, Error> {
    result(hypercall1(Hypercall::EvtchnSend.number(), u64::from(port)))
}

pub fn close(port: u32) -> Result<u64, Error> {
    result(hypercall1(Hypercall::EvtchnClose.number(), u64::from(port)))
}

pub fn unmask(port: u32) -> Result<u64, Error> {
    result(hypercall1(Hypercall::EvtchnUnmask.number(), u64::from(port)))
}

pub fn status(port: u32) -> Result<EvtchnStatus, Error> {
    let mut s = EvtchnStatus::default();
    result(hypercall2(Hypercall::EvtchnStatus.number(), u64::from(port), &mut s as *mut EvtchnStatus as u64))?;
    Ok(s)
}

pub fn bind_vcpu(port: u32, vcpu: u32) -> Result<u64, Error> {
    result(hypercall2(Hypercall::EvtchnBindVcpu.number(), u64::from(port), u64::from(vcpu)))
}

pub fn deliver() -> Result<u64, Error> {
    result(hypercall0(Hypercall::EvtchnDeliver.number()))
}

pub fn timer_set(deadline: u64) -> Result<u64, Error> {
    result(hypercall1(Hypercall::TimerSet.number(), deadline))
}

pub fn sched_yield() -> Result<u64, Error> {
    result(hypercall0(Hypercall::SchedYield.number()))
}

pub fn sched_block() -> Result<u64, Error> {
    result(hypercall0(Hypercall::SchedBlock.number()))
}

/// Sleeps in `sched_block` until `done()` holds, as a guest kernel's idle
/// loop does: events are masked while `done` is checked, and `sched_block`
/// unmasks them as it sleeps (atomically, so an upcall that would make
/// `done` true cannot slip in between the check and the sleep and be
/// missed), returning at once if one is pending. Events end unmasked, with
/// any still pending delivered (section 8.1).
pub fn block_until(vcpu: usize, done: impl Fn() -> bool) {
    loop {
        set_masked(vcpu, true);
        if done() {
            set_masked(vcpu, false);
            if upcall_pending(vcpu) {
                deliver().expect("evtchn_deliver");
            }
            return;
        }
        sched_block().expect("sched_block");
    }
}

pub fn sched_poll(ports: &[u32], deadline: u64) -> Result<u64, Error> {
    result(hypercall3(Hypercall::SchedPoll.number(), ports.as_ptr() as u64, ports.len() as u64, deadline))
}

/// Sleeps until one of `ports` is pending (with events masked: no upcall
/// is needed, section 15 `sched_poll`) or system time reaches `deadline`;
/// clears the listed ports' pending bits. Returns false on the deadline
/// with nothing pending. Callers look at what the ports stand for
/// afterwards, so an event that arrives after the clear is not lost: it
/// sets the bit again.
pub fn wait_any(ports: &[u32], deadline: u64) -> bool {
    loop {
        let mut any = false;
        for &p in ports {
            any |= clear_pending(p);
        }
        if any {
            return true;
        }
        if now() >= deadline {
            return false;
        }
        sched_poll(ports, deadline).expect("sched_poll on bound ports");
    }
}
