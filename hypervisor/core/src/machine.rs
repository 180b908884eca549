//! Everything the hypervisor keeps about machine frames: which are free,
//! what each one is and who owns it, and the m2p table guests read.

use crate::frame_allocator::FrameAllocator;
use crate::frame_table::FrameTable;
use crate::m2p::M2p;

pub struct MachineMemory {
    pub allocator: FrameAllocator,
    pub frames: FrameTable,
    pub m2p: M2p,
}
