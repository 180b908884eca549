//! A virtual CPU: its registers as the entry code saves them, its virtual
//! privilege level (guest kernel or guest user mode), and what the guest
//! kernel registered for it — trap table, callbacks, kernel stack, segment
//! bases. Bouncing an exception, a user `syscall` or an event to the guest
//! kernel, and the `iret` that comes back, are decided here.
//!
//! The register layout is shared with the assembly in
//! `arch/x86_64/entry.S`, which addresses fields through `offset_of!`
//! constants, never by hand. Everything the assembly reads or writes while
//! the guest runs lives in [`EntryState`].

use core::mem::{offset_of, size_of};

use hypercall_abi::cpu::{selectors, trap_flags, IretFrame, TrapFrame};
use hypercall_abi::shared_info::{SharedInfo, VcpuInfo, VcpuTimeInfo, Wallclock};
use hypercall_abi::vcpu::{RunstateInfo, VcpuContext};

use crate::addr::{range_is_guest, Mfn};
use crate::guest_memory::AddressSpace;
use crate::phys::PhysMemory;

/// General-purpose registers except `rsp`, in the order the entry code
/// stores them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Gprs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

/// Everything needed to resume a vCPU in ring 3: the general registers,
/// then a hardware interrupt frame (`vector` and `error_code` say why the
/// guest left). Every way into the hypervisor from a guest builds this same
/// frame at the top of the CPU's stack; `cs` and `ss` are the real
/// selectors the CPU runs the guest with (always RPL 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct GuestRegisters {
    pub gprs: Gprs,
    /// The exception vector, or [`ENTRY_SYSCALL`] for a `syscall`.
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// `GuestRegisters::vector` of a frame built by the `syscall` entry.
pub const ENTRY_SYSCALL: u64 = 0x100;

/// RFLAGS bits a guest may hold: CF PF AF ZF SF TF DF OF, AC, ID.
/// IF is always set and IOPL always 0: a ring-3 kernel neither masks real
/// interrupts nor reaches I/O ports.
pub const RFLAGS_GUEST_MASK: u64 = 0x0000_0000_0024_0dd5;
pub const RFLAGS_IF: u64 = 1 << 9;
pub const RFLAGS_TF: u64 = 1 << 8;
pub const RFLAGS_DF: u64 = 1 << 10;
pub const RFLAGS_AC: u64 = 1 << 18;
/// Bit 1 of RFLAGS reads as one.
pub const RFLAGS_FIXED: u64 = 1 << 1;
const RFLAGS_IOPL: u64 = 3 << 12;

/// The real selectors guest code runs with (the hypervisor's GDT holds
/// them at the indices the ABI names).
pub const USER_CS64: u64 = selectors::FLAT_USER_CS64;
pub const USER_CS32: u64 = selectors::FLAT_USER_CS32;
pub const USER_DS: u64 = selectors::FLAT_USER_DS;

impl GuestRegisters {
    /// The registers a vCPU starts with: everything zero but the entry
    /// point, the stack and the first argument.
    pub fn at_entry(rip: u64, rsp: u64, rdi: u64) -> GuestRegisters {
        GuestRegisters {
            gprs: Gprs { rdi, ..Gprs::default() },
            rip,
            cs: USER_CS64,
            rsp,
            ss: USER_DS,
            rflags: RFLAGS_FIXED | RFLAGS_IF,
            ..GuestRegisters::default()
        }
    }

    /// Forces RFLAGS to a value ring 3 may run with.
    pub fn sanitize_rflags(&mut self) {
        self.rflags = (self.rflags & RFLAGS_GUEST_MASK) | RFLAGS_FIXED | RFLAGS_IF;
    }
}

/// The guest's virtual privilege level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Kernel,
    User,
}

/// The part of a vCPU the entry assembly reads and writes while the guest
/// runs: the `syscall` fast path bounces a user `syscall` to the guest
/// kernel with nothing else. `repr(C)`, addressed through `offset_of!`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct EntryState {
    /// 1 while the vCPU is in guest user mode, 0 in guest kernel mode.
    pub user_mode: u64,
    /// Physical address of the kernel-mode L4 table.
    pub kernel_l4: u64,
    /// Physical address of the user-mode L4 table; 0: none installed.
    pub user_l4: u64,
    /// `stack_switch`: the kernel stack for bounces from user mode; 0: none.
    pub kernel_sp: u64,
    /// The syscall callback; 0: none.
    pub syscall_entry: u64,
    /// Non-zero: mask events on entry to the syscall callback.
    pub syscall_masks_events: u64,
    /// The GS base of the mode that is not running (the running one is in
    /// the CPU): swapped on every kernel/user transition.
    pub inactive_gs_base: u64,
    /// Where the hypervisor sees this vCPU's `VcpuInfo` (its own virtual
    /// address, set by the arch layer); the fast path reads `upcall_mask`
    /// and `upcall_pending` there.
    pub vcpu_info: u64,
}

/// One vector of the virtual trap table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapEntry {
    /// Handler in the guest kernel; 0: none.
    pub address: u64,
    /// `trap_flags` bits.
    pub flags: u8,
}

impl TrapEntry {
    /// The lowest virtual level that may raise the vector with `int n`.
    pub fn dpl(&self) -> u8 {
        self.flags & trap_flags::DPL_MASK
    }
    pub fn masks_events(&self) -> bool {
        self.flags & trap_flags::MASK_EVENTS != 0
    }
}

/// An entry point and whether entering it masks events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Callback {
    pub address: u64,
    pub masks_events: bool,
}

/// Number of trap-table vectors.
pub const TRAP_VECTORS: usize = 256;

/// One 64-byte piece of an [`FpuArea`]: XSAVE needs 64-byte alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(64))]
pub struct FpuChunk(pub [u8; 64]);

/// Bytes of an [`FpuArea`]: enough for every component Veneer enables
/// (x87, SSE, AVX, AVX-512: 2688 bytes in the standard format); the arch
/// layer checks the CPU's size against it at boot.
pub const FPU_AREA_SIZE: usize = 4096;

/// Offset of MXCSR in the legacy region of an FXSAVE/XSAVE image.
const MXCSR_OFFSET: usize = 24;
/// MXCSR after reset: every SIMD exception masked.
const MXCSR_DEFAULT: u32 = 0x1f80;

/// A vCPU's x87/SSE/AVX state while it is not on a CPU, in XSAVE (or, on a
/// CPU without it, FXSAVE) format. A new area is the architectural initial
/// state: XRSTOR of a zero header loads every component's init value, and
/// MXCSR, which it always loads, holds its default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FpuArea {
    chunks: alloc::boxed::Box<[FpuChunk]>,
}

impl Default for FpuArea {
    fn default() -> FpuArea {
        let mut chunks = alloc::vec![FpuChunk([0; 64]); FPU_AREA_SIZE / 64].into_boxed_slice();
        chunks[0].0[MXCSR_OFFSET..MXCSR_OFFSET + 4].copy_from_slice(&MXCSR_DEFAULT.to_le_bytes());
        FpuArea { chunks }
    }
}

impl FpuArea {
    /// The area's first byte, 64-byte aligned, `FPU_AREA_SIZE` bytes long.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.chunks.as_mut_ptr().cast()
    }
    pub fn as_ptr(&self) -> *const u8 {
        self.chunks.as_ptr().cast()
    }
    /// MXCSR as last saved.
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes(self.chunks[0].0[MXCSR_OFFSET..MXCSR_OFFSET + 4].try_into().expect("4 bytes"))
    }
}

/// A virtual CPU of a domain.
#[derive(Clone, Debug)]
pub struct Vcpu {
    pub id: u32,
    /// The registers while the vCPU is not on a CPU.
    pub regs: GuestRegisters,
    pub entry: EntryState,
    pub traps: [TrapEntry; TRAP_VECTORS],
    pub event_callback: Callback,
    pub failsafe_callback: Callback,
    /// The domain's shared-info frame, where this vCPU's `VcpuInfo` is.
    pub shared_info: Mfn,
    /// The vector state while the vCPU is off the CPU.
    pub fpu: FpuArea,
    /// FS base and the running mode's GS base while off the CPU.
    pub fs_base: u64,
    pub active_gs_base: u64,
    /// IA32_TSC_AUX (`msr_write`), loaded whenever the vCPU is.
    pub tsc_aux: u32,
    /// The data segment selectors (DS, ES, FS, GS) while off the CPU: the
    /// hypervisor never loads them, so guest code finds what it left.
    pub selectors: [u16; 4],
    /// `timer_set`: system time at which the timer VIRQ fires; 0: none.
    pub timer_deadline: u64,
    /// `sched_poll` in progress: the ports watched and the deadline (0:
    /// none).
    pub poll: Option<(alloc::vec::Vec<u32>, u64)>,
    /// Whether it has a start state (vCPU 0 from the builder, others from
    /// `vcpu_initialise`).
    pub initialised: bool,
    /// `vcpu_register_runstate`: where its `RunstateInfo` is kept; 0: none.
    pub runstate_area: u64,
    /// The version last written there.
    pub runstate_version: u32,
}

/// A checked `VcpuContext` (section 14): what `vcpu_initialise` gives an
/// offline vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartContext {
    pub regs: GuestRegisters,
    pub kernel_l4: Mfn,
    pub user_l4: Option<Mfn>,
    pub kernel_sp: u64,
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
    pub events_enabled: bool,
}

impl StartContext {
    /// Checks the bytes of a `VcpuContext` (C2, M6, flags, reserved).
    pub fn decode(bytes: &[u8; size_of::<VcpuContext>()], is_l4: &dyn Fn(Mfn) -> bool) -> Result<StartContext, hypercall_abi::Error> {
        use hypercall_abi::Error;
        let w = |field: usize| u64::from_le_bytes(bytes[field..field + 8].try_into().expect("8 bytes"));
        let (rip, rsp) = (w(offset_of!(VcpuContext, rip)), w(offset_of!(VcpuContext, rsp)));
        let (kernel_l4, user_l4) = (w(offset_of!(VcpuContext, kernel_l4_mfn)), w(offset_of!(VcpuContext, user_l4_mfn)));
        let kernel_sp = w(offset_of!(VcpuContext, kernel_sp));
        let bases = [w(offset_of!(VcpuContext, fs_base)), w(offset_of!(VcpuContext, gs_base_kernel)), w(offset_of!(VcpuContext, gs_base_user))];
        let flags = w(offset_of!(VcpuContext, flags));
        let reserved = &bytes[offset_of!(VcpuContext, reserved0)..];
        let sp_ok = kernel_sp == 0
            || (kernel_sp.is_multiple_of(16) && kernel_sp.checked_sub(128).is_some_and(|low| range_is_guest(low, 128)));
        if !range_is_guest(rip, 1)
            || !range_is_guest(rsp, 1)
            || !is_l4(Mfn(kernel_l4))
            || (user_l4 != 0 && !is_l4(Mfn(user_l4)))
            || !sp_ok
            || bases.iter().any(|&b| !crate::addr::is_canonical(b))
            || flags & !hypercall_abi::vcpu::vcpu_flags::EVENTS_ENABLED != 0
            || reserved.iter().any(|&b| b != 0)
        {
            return Err(Error::Invalid);
        }
        let mut regs = GuestRegisters::at_entry(rip, rsp, w(offset_of!(VcpuContext, rdi)));
        regs.gprs.rsi = w(offset_of!(VcpuContext, rsi));
        Ok(StartContext {
            regs,
            kernel_l4: Mfn(kernel_l4),
            user_l4: (user_l4 != 0).then_some(Mfn(user_l4)),
            kernel_sp,
            fs_base: bases[0],
            gs_base_kernel: bases[1],
            gs_base_user: bases[2],
            events_enabled: flags & hypercall_abi::vcpu::vcpu_flags::EVENTS_ENABLED != 0,
        })
    }
}

/// Offset of `vcpu_info[id]` in the shared-info page.
pub fn vcpu_info_offset(id: u32) -> usize {
    offset_of!(SharedInfo, vcpu_info) + id as usize * size_of::<VcpuInfo>()
}

/// Why a bounce could not be delivered: the guest is beyond help, and the
/// domain is crashed (a double fault of the guest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BounceError {
    /// User mode has no kernel stack (`stack_switch` was never called).
    NoKernelStack,
    /// The frame would lie outside the guest's range or its stack is not
    /// mapped writable.
    FrameUnwritable { at: u64 },
}

/// Why an `iret` frame was refused (rule C2): the domain is crashed, as
/// there is no caller to return an error to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IretError {
    /// The frame at `rsp` cannot be read.
    Unreadable { rsp: u64 },
    BadSelector { cs: u64, ss: u64 },
    BadAddress { rip: u64, rsp: u64 },
    /// Return to user mode with no user base pointer installed.
    NoUserBase,
}

/// How a vCPU's CPU state outside [`GuestRegisters`] is reached: the GS base
/// the running mode uses lives in the CPU, and so does the address space;
/// and what the host CPU is, for the guest's view of CPUID and MSRs.
/// The hypervisor implements this over MSRs and CR3, the tests over fields.
pub trait GuestCpu {
    /// The GS base the guest runs with now.
    fn active_gs_base(&self) -> u64;
    fn set_active_gs_base(&mut self, value: u64);
    fn set_fs_base(&mut self, value: u64);
    /// Switches to the address space `l4` (a physical address) of `mode`.
    fn load_address_space(&mut self, l4: u64, mode: Mode);
    fn fs_base(&self) -> u64;
    /// Loads the running vCPU's TSC_AUX (what `rdtscp` and `rdpid` return).
    fn set_tsc_aux(&mut self, value: u32);
    /// The host's CPUID leaf `leaf`, subleaf `subleaf`: EAX, EBX, ECX, EDX.
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// The XCR0 guests run with (fixed by the hypervisor); 0 without XSAVE.
    fn guest_xcr0(&self) -> u64;
    /// The value of a hypervisor-owned MSR that `msr_read` shows.
    fn host_msr(&self, msr: HostMsr) -> u64;
}

/// The hypervisor-owned MSRs whose values a guest may read (SPEC 13.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostMsr {
    MiscEnable,
    Pat,
    Efer,
}

/// Whether `sel` names one of the hypervisor's flat DPL-3 segments when its
/// RPL is forced to 3 (C2: the guest owns no GDT entries yet, so these are
/// the only loadable ones).
fn is_flat_code(sel: u64) -> bool {
    sel | 3 == USER_CS64 || sel | 3 == USER_CS32
}

/// What an `iret` returns to, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IretTarget {
    pub frame: IretFrame,
    pub mode: Mode,
}

/// The red zone a bounce on the interrupted kernel stack skips.
pub const RED_ZONE: u64 = 128;

impl Vcpu {
    /// vCPU `id` of a domain whose kernel address space is `kernel_l4`,
    /// starting in kernel mode with `regs`.
    pub fn new(id: u32, regs: GuestRegisters, kernel_l4: Mfn, shared_info: Mfn) -> Vcpu {
        Vcpu {
            id,
            regs,
            entry: EntryState { kernel_l4: kernel_l4.phys(), ..EntryState::default() },
            traps: [TrapEntry::default(); TRAP_VECTORS],
            event_callback: Callback::default(),
            failsafe_callback: Callback::default(),
            shared_info,
            fpu: FpuArea::default(),
            fs_base: 0,
            active_gs_base: 0,
            tsc_aux: 0,
            selectors: [0; 4],
            timer_deadline: 0,
            poll: None,
            initialised: id == 0,
            runstate_area: 0,
            runstate_version: 0,
        }
    }

    pub fn mode(&self) -> Mode {
        if self.entry.user_mode != 0 {
            Mode::User
        } else {
            Mode::Kernel
        }
    }

    /// The kernel-mode address space, where hypercall pointers and bounce
    /// frames live.
    pub fn kernel_space(&self) -> AddressSpace {
        AddressSpace { l4: self.kernel_base() }
    }

    /// The kernel-mode base pointer (M6: it holds a use of its L4).
    pub fn kernel_base(&self) -> Mfn {
        Mfn::from_phys(self.entry.kernel_l4)
    }

    /// The user-mode base pointer, once the guest installs one.
    pub fn user_base(&self) -> Option<Mfn> {
        (self.entry.user_l4 != 0).then(|| Mfn::from_phys(self.entry.user_l4))
    }

    /// Installs a kernel base pointer; returns the one it replaces. The
    /// caller moves the frame-table uses.
    pub fn replace_kernel_base(&mut self, l4: Mfn) -> Mfn {
        Mfn::from_phys(core::mem::replace(&mut self.entry.kernel_l4, l4.phys()))
    }

    /// Installs (or with `None` removes) the user base pointer; returns the
    /// one it replaces.
    pub fn replace_user_base(&mut self, l4: Option<Mfn>) -> Option<Mfn> {
        let old = self.user_base();
        self.entry.user_l4 = l4.map_or(0, Mfn::phys);
        old
    }

    fn info_byte(&self, mem: &impl PhysMemory, field: usize) -> u8 {
        mem.frame(self.shared_info)[vcpu_info_offset(self.id) + field]
    }

    fn set_info_byte(&self, mem: &mut impl PhysMemory, field: usize, value: u8) {
        mem.frame_mut(self.shared_info)[vcpu_info_offset(self.id) + field] = value;
    }

    /// The virtual interrupt flag: events are masked.
    pub fn events_masked(&self, mem: &impl PhysMemory) -> bool {
        self.info_byte(mem, offset_of!(VcpuInfo, upcall_mask)) != 0
    }

    pub fn set_events_masked(&self, mem: &mut impl PhysMemory, masked: bool) {
        self.set_info_byte(mem, offset_of!(VcpuInfo, upcall_mask), u8::from(masked));
    }

    /// Gives an offline vCPU the start state `ctx`, with the trap table and
    /// callbacks of `from` (the caller), in kernel mode.
    pub fn initialise(&mut self, ctx: &StartContext, from: &Vcpu, mem: &mut impl PhysMemory) {
        self.regs = ctx.regs;
        self.entry = EntryState {
            user_mode: 0,
            kernel_l4: ctx.kernel_l4.phys(),
            user_l4: ctx.user_l4.map_or(0, Mfn::phys),
            kernel_sp: ctx.kernel_sp,
            syscall_entry: from.entry.syscall_entry,
            syscall_masks_events: from.entry.syscall_masks_events,
            inactive_gs_base: ctx.gs_base_user,
            vcpu_info: self.entry.vcpu_info,
        };
        self.traps = from.traps;
        self.event_callback = from.event_callback;
        self.failsafe_callback = from.failsafe_callback;
        self.fpu = FpuArea::default();
        self.fs_base = ctx.fs_base;
        self.active_gs_base = ctx.gs_base_kernel;
        self.selectors = [0; 4];
        self.timer_deadline = 0;
        self.poll = None;
        self.initialised = true;
        self.set_events_masked(mem, !ctx.events_enabled);
    }

    /// Copies `info` to the registered runstate area with the version
    /// protocol (section 14). Writes that fault are dropped, as the ABI says.
    pub fn write_runstate(&mut self, mem: &mut impl PhysMemory, state: u32, entry_time: u64, time: [u64; 4]) {
        if self.runstate_area == 0 {
            return;
        }
        let at = self.runstate_area;
        let space = self.kernel_space();
        let odd = self.runstate_version.wrapping_add(1) | 1;
        let even = odd.wrapping_add(1);
        let mut b = [0u8; size_of::<RunstateInfo>()];
        b[offset_of!(RunstateInfo, state)..][..4].copy_from_slice(&state.to_le_bytes());
        b[offset_of!(RunstateInfo, version)..][..4].copy_from_slice(&odd.to_le_bytes());
        b[offset_of!(RunstateInfo, state_entry_time)..][..8].copy_from_slice(&entry_time.to_le_bytes());
        for (i, t) in time.iter().enumerate() {
            b[offset_of!(RunstateInfo, time) + 8 * i..][..8].copy_from_slice(&t.to_le_bytes());
        }
        let version_at = at + offset_of!(RunstateInfo, version) as u64;
        if space.copy_to(mem, version_at, &odd.to_le_bytes()).is_err() || space.copy_to(mem, at, &b).is_err() {
            return;
        }
        let _ = space.copy_to(mem, version_at, &even.to_le_bytes());
        self.runstate_version = even;
    }

    /// Whether an upcall is due: an event is pending for this vCPU, events
    /// are not masked, and there is an event callback to bounce to.
    pub fn upcall_due(&self, mem: &impl PhysMemory) -> bool {
        self.upcall_pending(mem) && !self.events_masked(mem) && self.event_callback.address != 0
    }

    /// `vcpu_info.upcall_pending`.
    pub fn upcall_pending(&self, mem: &impl PhysMemory) -> bool {
        self.info_byte(mem, offset_of!(VcpuInfo, upcall_pending)) != 0
    }

    /// Writes the time record (section 8.2) with the version protocol.
    pub fn write_time(&self, mem: &mut impl PhysMemory, record: &VcpuTimeInfo) {
        let at = vcpu_info_offset(self.id) + offset_of!(VcpuInfo, time);
        write_versioned(mem, self.shared_info, at, &time_record_bytes(record));
    }

    /// Records the faulting address of a page fault in `vcpu_info.cr2`.
    pub fn set_cr2(&self, mem: &mut impl PhysMemory, cr2: u64) {
        let at = vcpu_info_offset(self.id) + offset_of!(VcpuInfo, cr2);
        mem.frame_mut(self.shared_info)[at..at + 8].copy_from_slice(&cr2.to_le_bytes());
    }

    /// Moves the vCPU to `mode`: swaps the GS bases and the address space.
    /// Does nothing if it is in `mode` already.
    pub fn switch_mode(&mut self, mode: Mode, cpu: &mut dyn GuestCpu) {
        if self.mode() == mode {
            return;
        }
        let outgoing = cpu.active_gs_base();
        cpu.set_active_gs_base(self.entry.inactive_gs_base);
        self.entry.inactive_gs_base = outgoing;
        self.entry.user_mode = u64::from(mode == Mode::User);
        let l4 = match mode {
            Mode::Kernel => self.entry.kernel_l4,
            Mode::User => self.entry.user_l4,
        };
        cpu.load_address_space(l4, mode);
    }

    /// Bounces to the guest kernel's `handler`: switches to kernel mode if
    /// the guest was in user mode, writes a [`TrapFrame`] on the kernel
    /// stack (section 13.3 of the ABI) and resumes at `handler` with `rsp`
    /// at the frame. `regs` holds the interrupted state on entry and the
    /// handler's on return. On error nothing has changed.
    pub fn bounce(
        &mut self,
        regs: &mut GuestRegisters,
        handler: u64,
        error_code: u64,
        mask_events: bool,
        mem: &mut impl PhysMemory,
        cpu: &mut dyn GuestCpu,
    ) -> Result<(), BounceError> {
        let from_user = self.mode() == Mode::User;
        let (stack, cs, ss) = if from_user {
            if self.entry.kernel_sp == 0 {
                return Err(BounceError::NoKernelStack);
            }
            (self.entry.kernel_sp, regs.cs, regs.ss)
        } else {
            (regs.rsp.wrapping_sub(RED_ZONE) & !15, regs.cs & !3, regs.ss & !3)
        };
        let at = stack.wrapping_sub(size_of::<TrapFrame>() as u64);
        if stack < at || !range_is_guest(at, size_of::<TrapFrame>() as u64) {
            return Err(BounceError::FrameUnwritable { at });
        }
        let masked = self.events_masked(mem);
        let frame = TrapFrame {
            rcx: regs.gprs.rcx,
            r11: regs.gprs.r11,
            error_code,
            rip: regs.rip,
            cs,
            rflags: (regs.rflags & !(RFLAGS_IF | RFLAGS_IOPL)) | if masked { 0 } else { RFLAGS_IF },
            rsp: regs.rsp,
            ss,
        };
        self.kernel_space()
            .copy_to(mem, at, &trap_frame_bytes(&frame))
            .map_err(|_| BounceError::FrameUnwritable { at })?;
        // Committed: nothing below can fail.
        self.switch_mode(Mode::Kernel, cpu);
        if mask_events {
            self.set_events_masked(mem, true);
        }
        regs.rip = handler;
        regs.rsp = at;
        regs.cs = USER_CS64;
        regs.ss = USER_DS;
        // As an interrupt gate does: no single-stepping into the handler,
        // string operations forward, no alignment checks.
        regs.rflags = (regs.rflags & !(RFLAGS_TF | RFLAGS_DF | RFLAGS_AC)) & RFLAGS_GUEST_MASK | RFLAGS_FIXED | RFLAGS_IF;
        Ok(())
    }

    /// Reads and checks the `IretFrame` at `rsp` (rule C2).
    pub fn decode_iret(&self, rsp: u64, mem: &impl PhysMemory) -> Result<IretTarget, IretError> {
        let mut bytes = [0u8; size_of::<IretFrame>()];
        self.kernel_space().copy_from(mem, rsp, &mut bytes).map_err(|_| IretError::Unreadable { rsp })?;
        let word = |field: usize| u64::from_le_bytes(bytes[field..field + 8].try_into().expect("8 bytes"));
        let frame = IretFrame {
            rax: word(offset_of!(IretFrame, rax)),
            r11: word(offset_of!(IretFrame, r11)),
            rcx: word(offset_of!(IretFrame, rcx)),
            flags: word(offset_of!(IretFrame, flags)),
            rip: word(offset_of!(IretFrame, rip)),
            cs: word(offset_of!(IretFrame, cs)),
            rflags: word(offset_of!(IretFrame, rflags)),
            rsp: word(offset_of!(IretFrame, rsp)),
            ss: word(offset_of!(IretFrame, ss)),
        };
        if !is_flat_code(frame.cs) || frame.ss | 3 != USER_DS || frame.cs >> 16 != 0 || frame.ss >> 16 != 0 {
            return Err(IretError::BadSelector { cs: frame.cs, ss: frame.ss });
        }
        if !range_is_guest(frame.rip, 1) || !range_is_guest(frame.rsp, 1) {
            return Err(IretError::BadAddress { rip: frame.rip, rsp: frame.rsp });
        }
        let mode = if frame.cs & 3 == 3 { Mode::User } else { Mode::Kernel };
        if mode == Mode::User && self.entry.user_l4 == 0 {
            return Err(IretError::NoUserBase);
        }
        Ok(IretTarget { frame, mode })
    }

    /// Carries out a checked `iret`: the registers of the frame, the mode it
    /// names, and `upcall_mask` as the inverse of its IF.
    pub fn iret(&mut self, target: &IretTarget, regs: &mut GuestRegisters, mem: &mut impl PhysMemory, cpu: &mut dyn GuestCpu) {
        let f = &target.frame;
        regs.gprs.rax = f.rax;
        if f.flags & hypercall_abi::cpu::iret_flags::IN_SYSCALL == 0 {
            regs.gprs.rcx = f.rcx;
            regs.gprs.r11 = f.r11;
        }
        regs.rip = f.rip;
        regs.rsp = f.rsp;
        regs.cs = f.cs | 3;
        regs.ss = f.ss | 3;
        regs.rflags = f.rflags;
        regs.sanitize_rflags();
        self.set_events_masked(mem, f.rflags & RFLAGS_IF == 0);
        self.switch_mode(target.mode, cpu);
    }
}

/// Writes `body` (the words after a 32-bit version) at `at` of `frame`:
/// version odd, body, version even again, as readers expect.
fn write_versioned(mem: &mut impl PhysMemory, frame: Mfn, at: usize, body: &[u8]) {
    let page = mem.frame_mut(frame);
    let version = u32::from_le_bytes(page[at..at + 4].try_into().expect("4 bytes"));
    let odd = version.wrapping_add(1) | 1;
    page[at..at + 4].copy_from_slice(&odd.to_le_bytes());
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    page[at + 4..at + 4 + body.len()].copy_from_slice(body);
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    page[at..at + 4].copy_from_slice(&odd.wrapping_add(1).to_le_bytes());
}

/// A `VcpuTimeInfo` after its version field, in ABI layout.
fn time_record_bytes(r: &VcpuTimeInfo) -> [u8; size_of::<VcpuTimeInfo>() - 4] {
    let mut b = [0u8; size_of::<VcpuTimeInfo>() - 4];
    let at = |field: usize| field - 4;
    b[at(offset_of!(VcpuTimeInfo, tsc_timestamp))..][..8].copy_from_slice(&r.tsc_timestamp.to_le_bytes());
    b[at(offset_of!(VcpuTimeInfo, system_time))..][..8].copy_from_slice(&r.system_time.to_le_bytes());
    b[at(offset_of!(VcpuTimeInfo, tsc_to_system_mul))..][..4].copy_from_slice(&r.tsc_to_system_mul.to_le_bytes());
    b[at(offset_of!(VcpuTimeInfo, tsc_shift))] = r.tsc_shift.to_le_bytes()[0];
    b[at(offset_of!(VcpuTimeInfo, flags))] = r.flags;
    b
}

/// Writes the wall clock of a domain's shared-info page (the UTC time at
/// system time 0) with the version protocol.
pub fn write_wallclock(mem: &mut impl PhysMemory, shared_info: Mfn, sec: u64, nsec: u32) {
    let mut body = [0u8; size_of::<Wallclock>() - 4];
    body[offset_of!(Wallclock, nsec) - 4..][..4].copy_from_slice(&nsec.to_le_bytes());
    body[offset_of!(Wallclock, sec) - 4..][..8].copy_from_slice(&sec.to_le_bytes());
    write_versioned(mem, shared_info, offset_of!(SharedInfo, wallclock), &body);
}

/// The bytes of a `TrapFrame`, in ABI layout.
fn trap_frame_bytes(f: &TrapFrame) -> [u8; size_of::<TrapFrame>()] {
    let mut b = [0u8; size_of::<TrapFrame>()];
    for (field, value) in [
        (offset_of!(TrapFrame, rcx), f.rcx),
        (offset_of!(TrapFrame, r11), f.r11),
        (offset_of!(TrapFrame, error_code), f.error_code),
        (offset_of!(TrapFrame, rip), f.rip),
        (offset_of!(TrapFrame, cs), f.cs),
        (offset_of!(TrapFrame, rflags), f.rflags),
        (offset_of!(TrapFrame, rsp), f.rsp),
        (offset_of!(TrapFrame, ss), f.ss),
    ] {
        b[field..field + 8].copy_from_slice(&value.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pte::{table_index, Pte, PteFlags};
    use crate::test_support::VecMemory;

    #[test]
    fn versioned_records_end_even_and_hold_the_values() {
        let (mut mem, v) = setup();
        let r = VcpuTimeInfo { tsc_timestamp: 7, system_time: 9, tsc_to_system_mul: 0x8000_0000, tsc_shift: -1, flags: 1, ..VcpuTimeInfo::default() };
        v.write_time(&mut mem, &r);
        v.write_time(&mut mem, &r);
        let at = vcpu_info_offset(0) + offset_of!(VcpuInfo, time);
        let page = mem.frame(SHARED_INFO);
        assert_eq!(u32::from_le_bytes(page[at..at + 4].try_into().unwrap()), 4, "two updates: version 4");
        assert_eq!(u64::from_le_bytes(page[at + 16..at + 24].try_into().unwrap()), 9);
        assert_eq!(page[at + 28] as i8, -1);
        write_wallclock(&mut mem, SHARED_INFO, 1_700_000_000, 5);
        let w = offset_of!(SharedInfo, wallclock);
        let page = mem.frame(SHARED_INFO);
        assert_eq!(u32::from_le_bytes(page[w..w + 4].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(page[w + 8..w + 16].try_into().unwrap()), 1_700_000_000);
    }

    fn context(words: [u64; 11]) -> [u8; 128] {
        let mut b = [0u8; 128];
        for (i, w) in words.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    #[test]
    fn vcpu_contexts_are_checked_and_applied() {
        let (mut mem, v0) = setup();
        let l4 = Mfn(1);
        let is_l4 = |m: Mfn| m == l4;
        let good = [0xffff_ffff_8000_0100, STACK_PAGE + 0x800, 7, 8, l4.0, 0, STACK_PAGE + 0x1000, 0x10, 0x20, 0x30, 1];
        let ctx = StartContext::decode(&context(good), &is_l4).unwrap();
        let mut v1 = Vcpu::new(1, GuestRegisters::default(), l4, SHARED_INFO);
        assert!(!v1.initialised);
        let mut from = v0.clone();
        from.traps[14].address = 0x1234;
        from.entry.syscall_entry = 0x5678;
        v1.initialise(&ctx, &from, &mut mem);
        assert!(v1.initialised && !v1.events_masked(&mem));
        assert_eq!((v1.regs.rip, v1.regs.rsp, v1.regs.gprs.rdi, v1.regs.gprs.rsi), (good[0], good[1], 7, 8));
        assert_eq!((v1.traps[14].address, v1.entry.syscall_entry, v1.entry.kernel_sp), (0x1234, 0x5678, good[6]));
        assert_eq!((v1.fs_base, v1.active_gs_base, v1.entry.inactive_gs_base), (0x10, 0x20, 0x30));
        for (i, bad) in [
            (0, 0x8000_0000_0000u64),       // non-canonical rip
            (1, 0xffff_8000_0000_0000),     // rsp in the hypervisor
            (4, 2),                         // kernel base not an L4
            (5, 3),                         // user base not an L4
            (6, STACK_PAGE + 8),            // unaligned kernel stack
            (6, 0xffff_8800_0000_0040),     // no room for a frame
            (7, 1 << 63),                   // non-canonical FS base
            (10, 2),                        // undefined flag
        ] {
            let mut c = good;
            c[i] = bad;
            assert_eq!(StartContext::decode(&context(c), &is_l4), Err(hypercall_abi::Error::Invalid), "word {i} = {bad:#x}");
        }
        let mut reserved = context(good);
        reserved[127] = 1;
        assert_eq!(StartContext::decode(&reserved, &is_l4), Err(hypercall_abi::Error::Invalid), "reserved");
    }

    #[test]
    fn a_new_fpu_area_is_the_initial_state() {
        let mut a = FpuArea::default();
        assert_eq!(a.as_mut_ptr() as usize % 64, 0, "XSAVE alignment");
        assert_eq!(a.mxcsr(), 0x1f80);
        // The XSAVE header (XSTATE_BV, XCOMP_BV) at 512 is zero.
        assert!(a.chunks[8].0.iter().all(|&b| b == 0));
    }

    #[test]
    fn rflags_never_grants_iopl_or_clears_if() {
        let mut r = GuestRegisters { rflags: u64::MAX, ..GuestRegisters::default() };
        r.sanitize_rflags();
        assert_eq!(r.rflags & (3 << 12), 0, "IOPL");
        assert_ne!(r.rflags & RFLAGS_IF, 0);
        assert_eq!(r.rflags & (1 << 17), 0, "VM");
        assert_eq!(r.rflags & (1 << 14), 0, "NT");
        r.rflags = 0;
        r.sanitize_rflags();
        assert_eq!(r.rflags, RFLAGS_FIXED | RFLAGS_IF);
    }

    /// A CPU whose state is plain fields.
    #[derive(Default)]
    struct FakeCpu {
        gs: u64,
        fs: u64,
        space: Option<(u64, Mode)>,
    }

    impl GuestCpu for FakeCpu {
        fn active_gs_base(&self) -> u64 {
            self.gs
        }
        fn set_active_gs_base(&mut self, value: u64) {
            self.gs = value;
        }
        fn set_fs_base(&mut self, value: u64) {
            self.fs = value;
        }
        fn load_address_space(&mut self, l4: u64, mode: Mode) {
            self.space = Some((l4, mode));
        }
        fn fs_base(&self) -> u64 {
            self.fs
        }
        // Bounces and `iret` use none of the CPU's identity.
        fn set_tsc_aux(&mut self, _: u32) {
            unreachable!("no vCPU test writes TSC_AUX")
        }
        fn host_cpuid(&self, _: u32, _: u32) -> [u32; 4] {
            unreachable!("no vCPU test reads CPUID")
        }
        fn guest_xcr0(&self) -> u64 {
            unreachable!("no vCPU test reads XCR0")
        }
        fn host_msr(&self, _: HostMsr) -> u64 {
            unreachable!("no vCPU test reads MSRs")
        }
    }

    const RW_USER: PteFlags = PteFlags::PRESENT.union(PteFlags::WRITABLE).union(PteFlags::USER);
    /// The one mapped stack page of the test address space.
    const STACK_PAGE: u64 = 0xffff_ffff_8010_0000;
    const SHARED_INFO: Mfn = Mfn(30);

    /// Kernel L4 at frame 1 mapping `STACK_PAGE` (frame 20) writable and the
    /// page after it (frame 21) read-only.
    fn setup() -> (VecMemory, Vcpu) {
        let mut mem = VecMemory::new(64);
        let (l4, l3, l2, l1) = (Mfn(1), Mfn(2), Mfn(3), Mfn(4));
        mem.write_u64(l4, table_index(STACK_PAGE, 4), Pte::new(l3, RW_USER).0);
        mem.write_u64(l3, table_index(STACK_PAGE, 3), Pte::new(l2, RW_USER).0);
        mem.write_u64(l2, table_index(STACK_PAGE, 2), Pte::new(l1, RW_USER).0);
        mem.write_u64(l1, table_index(STACK_PAGE, 1), Pte::new(Mfn(20), RW_USER).0);
        mem.write_u64(l1, table_index(STACK_PAGE + 0x1000, 1), Pte::new(Mfn(21), PteFlags::PRESENT | PteFlags::USER).0);
        let regs = GuestRegisters::at_entry(0xffff_ffff_8000_0000, STACK_PAGE + 0x1000, 0);
        (mem, Vcpu::new(0, regs, l4, SHARED_INFO))
    }

    fn read_frame(mem: &VecMemory, v: &Vcpu, at: u64) -> [u64; 8] {
        let mut b = [0u8; 64];
        v.kernel_space().copy_from(mem, at, &mut b).unwrap();
        core::array::from_fn(|i| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap()))
    }

    #[test]
    fn bounce_from_kernel_mode_skips_the_red_zone_and_reports_ring_0() {
        let (mut mem, mut v) = setup();
        let mut cpu = FakeCpu::default();
        let mut regs = v.regs;
        regs.rsp = STACK_PAGE + 0x800 + 8;
        regs.gprs.rcx = 0x1111;
        regs.gprs.r11 = 0x2222;
        regs.rflags = 0x246 | RFLAGS_TF;
        let interrupted = regs;
        v.bounce(&mut regs, 0xffff_ffff_8000_0400, 0x7, false, &mut mem, &mut cpu).unwrap();
        let at = (interrupted.rsp - RED_ZONE) & !15;
        assert_eq!(regs.rsp, at - 64);
        assert_eq!(regs.rip, 0xffff_ffff_8000_0400);
        assert_eq!(regs.rflags & RFLAGS_TF, 0, "no single-step into the handler");
        let f = read_frame(&mem, &v, regs.rsp);
        assert_eq!(f, [0x1111, 0x2222, 7, interrupted.rip, selectors::FLAT_KERNEL_CS64, 0x246 | RFLAGS_TF, interrupted.rsp, selectors::FLAT_KERNEL_SS]);
        assert_eq!(cpu.space, None, "stays in kernel mode");
    }

    #[test]
    fn bounce_from_user_mode_switches_stack_gs_and_space() {
        let (mut mem, mut v) = setup();
        let mut cpu = FakeCpu { gs: 0xa, ..FakeCpu::default() };
        v.entry.user_mode = 1;
        v.entry.user_l4 = 0x5000;
        v.entry.kernel_sp = STACK_PAGE + 0x1000;
        v.entry.inactive_gs_base = 0xb;
        v.set_events_masked(&mut mem, true);
        let mut regs = GuestRegisters::at_entry(0x40_0000, 0x7fff_0000, 0);
        let interrupted = regs;
        v.bounce(&mut regs, 0xffff_ffff_8000_0800, 0, true, &mut mem, &mut cpu).unwrap();
        assert_eq!(v.mode(), Mode::Kernel);
        assert_eq!((cpu.gs, v.entry.inactive_gs_base), (0xb, 0xa));
        assert_eq!(cpu.space, Some((v.entry.kernel_l4, Mode::Kernel)));
        assert_eq!(regs.rsp, STACK_PAGE + 0x1000 - 64);
        let f = read_frame(&mem, &v, regs.rsp);
        // Events were masked: the frame's IF is clear.
        assert_eq!(f[3..], [interrupted.rip, USER_CS64, RFLAGS_FIXED, interrupted.rsp, USER_DS]);
        assert!(v.events_masked(&mem));
    }

    #[test]
    fn bounce_refuses_what_it_cannot_write_and_changes_nothing() {
        let (mut mem, mut v) = setup();
        let mut cpu = FakeCpu::default();
        let before = (v.entry, mem.frame(Mfn(20)).to_vec());
        for rsp in [
            STACK_PAGE + 0x1000 + 0x800 + RED_ZONE, // read-only page
            STACK_PAGE + 0x10,                      // runs off the bottom
            0xffff_8800_0000_0000 + 0x40 + RED_ZONE, // into the hypervisor's range
            0x8000_0000_0000 + RED_ZONE + 8,        // non-canonical
            0x20,                                   // wraps
        ] {
            let mut regs = v.regs;
            regs.rsp = rsp;
            let copy = regs;
            assert!(matches!(v.bounce(&mut regs, 1, 0, true, &mut mem, &mut cpu), Err(BounceError::FrameUnwritable { .. })), "{rsp:#x}");
            assert_eq!(regs, copy);
        }
        v.entry.user_mode = 1;
        let mut regs = v.regs;
        assert_eq!(v.bounce(&mut regs, 1, 0, true, &mut mem, &mut cpu), Err(BounceError::NoKernelStack));
        v.entry.user_mode = 0;
        assert_eq!((v.entry, mem.frame(Mfn(20)).to_vec()), before);
        assert!(!v.events_masked(&mem));
    }

    fn write_iret(mem: &mut VecMemory, v: &Vcpu, at: u64, f: [u64; 9]) {
        let b: Vec<u8> = f.iter().flat_map(|w| w.to_le_bytes()).collect();
        v.kernel_space().copy_to(mem, at, &b).unwrap();
    }

    #[test]
    fn iret_to_user_mode_restores_the_frame_and_unmasks() {
        let (mut mem, mut v) = setup();
        let mut cpu = FakeCpu { gs: 0xa, ..FakeCpu::default() };
        v.entry.user_l4 = 0x5000;
        v.entry.inactive_gs_base = 0xb;
        v.set_events_masked(&mut mem, true);
        let at = STACK_PAGE + 0x100;
        write_iret(&mut mem, &v, at, [1, 2, 3, 0, 0x40_1000, USER_CS64, 0x3246, 0x7000_0000, USER_DS]);
        let t = v.decode_iret(at, &mem).unwrap();
        assert_eq!(t.mode, Mode::User);
        let mut regs = v.regs;
        v.iret(&t, &mut regs, &mut mem, &mut cpu);
        assert_eq!((regs.gprs.rax, regs.gprs.r11, regs.gprs.rcx), (1, 2, 3));
        assert_eq!((regs.rip, regs.cs, regs.rsp, regs.ss), (0x40_1000, USER_CS64, 0x7000_0000, USER_DS));
        assert_eq!(regs.rflags, 0x246, "IOPL dropped");
        assert!(!v.events_masked(&mem), "IF set unmasks");
        assert_eq!((v.mode(), cpu.gs, v.entry.inactive_gs_base), (Mode::User, 0xb, 0xa));
        assert_eq!(cpu.space, Some((0x5000, Mode::User)));
    }

    #[test]
    fn iret_in_syscall_keeps_rcx_and_r11_and_kernel_frames_stay_in_kernel() {
        let (mut mem, mut v) = setup();
        let mut cpu = FakeCpu::default();
        let at = STACK_PAGE + 0x100;
        write_iret(&mut mem, &v, at, [1, 2, 3, 1, 0xffff_ffff_8000_0010, selectors::FLAT_KERNEL_CS64, 0x2, STACK_PAGE + 0x800, selectors::FLAT_KERNEL_SS]);
        let t = v.decode_iret(at, &mem).unwrap();
        let mut regs = v.regs;
        regs.gprs.rcx = 0xc;
        regs.gprs.r11 = 0xd;
        v.iret(&t, &mut regs, &mut mem, &mut cpu);
        assert_eq!((regs.gprs.rcx, regs.gprs.r11), (0xc, 0xd));
        assert_eq!((v.mode(), regs.cs, regs.ss), (Mode::Kernel, USER_CS64, USER_DS));
        assert!(v.events_masked(&mem), "IF clear masks");
        assert_eq!(cpu.space, None);
    }

    #[test]
    fn iret_refuses_frames_that_break_c2() {
        let (mut mem, v) = setup();
        let at = STACK_PAGE + 0x100;
        let good = [0, 0, 0, 0, 0x40_1000, selectors::FLAT_KERNEL_CS64, 0x202, 0x7000_0000, selectors::FLAT_KERNEL_SS];
        let with = |i: usize, x: u64| {
            let mut f = good;
            f[i] = x;
            f
        };
        for (f, what) in [
            (with(5, 0x08), "hypervisor code selector"),
            (with(5, 0x1000), "hypervisor kernel code"),
            (with(5, USER_DS), "data as code"),
            (with(5, 0x1_102b), "selector over 16 bits"),
            (with(8, 0x1000), "hypervisor stack selector"),
            (with(8, 0), "null stack selector"),
            (with(4, 0xffff_8000_0000_0000), "rip in the hypervisor"),
            (with(4, 0x8000_0000_0000), "non-canonical rip"),
            (with(7, 0xffff_8700_0000_0000), "rsp in the hypervisor"),
        ] {
            write_iret(&mut mem, &v, at, f);
            assert!(v.decode_iret(at, &mem).is_err(), "{what}");
        }
        write_iret(&mut mem, &v, at, with(5, USER_CS64));
        assert_eq!(v.decode_iret(at, &mem), Err(IretError::NoUserBase));
        let off_the_end = STACK_PAGE + 0x2000 - 8;
        assert_eq!(v.decode_iret(off_the_end, &mem), Err(IretError::Unreadable { rsp: off_the_end }), "runs off the mapping");
    }
}
