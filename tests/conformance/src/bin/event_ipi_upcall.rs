//! An event on a port bound to this vCPU (an IPI port) follows section
//! 8.1: the pending bit, the `pending_sel` word and `upcall_pending` are
//! set, and with events unmasked the event callback is entered right after
//! the `syscall` that sent it, with a kernel-mode frame whose IF is set.
//! With `upcall_mask` set nothing is delivered until the guest unmasks and
//! calls `evtchn_deliver`; a masked port stays pending without an upcall
//! until `evtchn_unmask`; a second send while pending is not a second
//! upcall; `evtchn_status` describes the port and `evtchn_close` frees it
//! and clears its pending bit.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use veneer_guest::hypercall_abi::cpu::selectors::FLAT_KERNEL_CS64;
use veneer_guest::hypercall_abi::event::EvtchnState;
use veneer_guest::hypercall_abi::Error;
use veneer_guest::trap::{self, TrapContext};
use veneer_guest::{check, event, StartInfo};

veneer_guest::entry!(main);
veneer_guest::expect!(b"pass");

static UPCALLS: AtomicU64 = AtomicU64::new(0);
static LAST_SEL: AtomicU64 = AtomicU64::new(0);
static LAST_RIP: AtomicU64 = AtomicU64::new(0);
static LAST_FLAGS: AtomicU64 = AtomicU64::new(0);
static LAST_CS: AtomicU64 = AtomicU64::new(0);

fn upcall(ctx: &mut TrapContext) {
    check!(event::masked(0), "the callback masks events on entry");
    LAST_SEL.store(event::take_pending_sel(0), Ordering::SeqCst);
    LAST_RIP.store(ctx.frame.rip, Ordering::SeqCst);
    LAST_FLAGS.store(ctx.frame.rflags, Ordering::SeqCst);
    LAST_CS.store(ctx.frame.cs, Ordering::SeqCst);
    UPCALLS.fetch_add(1, Ordering::SeqCst);
    // The iret restores IF from the frame: events unmasked again.
}

fn main(start: &StartInfo) -> ! {
    event::init(start);
    check!(trap::install_event(true, upcall).is_ok(), "event callback");
    let port = event::bind_ipi(0).unwrap_or_else(|e| veneer_guest::failure(format_args!("bind_ipi: {:?}", e)));
    check!(port == 1, "the first port is 1, got {}", port);
    let s = event::status(port).unwrap();
    check!(s.state == EvtchnState::Ipi as u32 && s.vcpu == 0, "status {:?}", s);

    // Events masked (the boot state): pending, no upcall.
    check!(event::masked(0), "events start masked");
    check!(event::send(port) == Ok(0), "send");
    check!(event::is_pending(port) && event::upcall_pending(0), "pending and upcall_pending");
    check!(UPCALLS.load(Ordering::SeqCst) == 0, "no upcall while masked");
    event::set_masked(0, false);
    check!(event::deliver() == Ok(0), "deliver");
    check!(UPCALLS.load(Ordering::SeqCst) == 1, "delivered after unmasking");
    check!(LAST_SEL.load(Ordering::SeqCst) == 1, "pending_sel word 0: {:#x}", LAST_SEL.load(Ordering::SeqCst));
    check!(LAST_CS.load(Ordering::SeqCst) == FLAT_KERNEL_CS64, "kernel-mode frame");
    check!(LAST_FLAGS.load(Ordering::SeqCst) & 0x200 != 0, "IF set in the frame: events were unmasked");
    check!(event::clear_pending(port), "the handler did not clear the port");

    // Unmasked: the upcall comes right after the sending syscall.
    let before: u64;
    // SAFETY: a plain evtchn_send; the label is the instruction after it.
    unsafe {
        core::arch::asm!(
            "lea {b}, [rip + 2f]",
            "syscall",
            "2:",
            b = out(reg) before,
            inout("rax") 0x64u64 => _, in("rdi") u64::from(port),
            out("rcx") _, out("r11") _,
        );
    }
    check!(UPCALLS.load(Ordering::SeqCst) == 2, "upcall after send");
    check!(LAST_RIP.load(Ordering::SeqCst) == before, "upcall at {:#x}, want {:#x}", LAST_RIP.load(Ordering::SeqCst), before);
    check!(event::clear_pending(port), "pending bit");

    // A second send while pending is no second upcall.
    event::set_masked(0, true);
    event::send(port).unwrap();
    event::send(port).unwrap();
    event::set_masked(0, false);
    event::deliver().unwrap();
    check!(UPCALLS.load(Ordering::SeqCst) == 3, "one upcall for two sends: {}", UPCALLS.load(Ordering::SeqCst));
    event::clear_pending(port);

    // A masked port: pending, no upcall, until evtchn_unmask.
    event::set_port_masked(port, true);
    event::send(port).unwrap();
    check!(event::is_pending(port), "masked port pending");
    check!(UPCALLS.load(Ordering::SeqCst) == 3 && !event::upcall_pending(0), "no upcall for a masked port");
    check!(event::unmask(port) == Ok(0), "unmask");
    check!(UPCALLS.load(Ordering::SeqCst) == 4, "unmask delivered the pending event");

    // Close frees the port and clears its pending bit.
    event::set_masked(0, true);
    event::send(port).unwrap();
    check!(event::close(port) == Ok(0), "close");
    check!(!event::is_pending(port), "close clears pending");
    check!(event::status(port).map(|s| s.state) == Ok(EvtchnState::Closed as u32), "closed status");
    check!(event::send(port) == Err(Error::NotFound), "send on a closed port");
    check!(event::bind_ipi(0) == Ok(1), "the port is free again");
    veneer_guest::success()
}
