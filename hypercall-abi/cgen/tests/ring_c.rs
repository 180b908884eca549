//! The C ring library in `veneer/ring.h` behaves exactly as the Rust one in
//! `hypercall_abi::ring`: the index arithmetic over edge and pseudo-random
//! inputs, and the two sides of a ring over a long script of pushes, pops,
//! publishes, rearms and lies about the indices. Both run the same inputs;
//! their outputs must be identical line for line.

use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

use hypercall_abi::ring::{
    needs_notify, rearm, requests_free, requests_unconsumed, responses_unconsumed, slot_offset, slots_for, BackRing,
    FrontRing, Protocol, SharedPage,
};
use veneer_abi_cgen::abi_dir;

/// Compiles `source` with `extra` flags, runs it and returns its stdout.
fn run_c(name: &str, source: &str, extra: &[&str]) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ring-c");
    fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    fs::write(&src, source).unwrap();
    let out = Command::new("gcc")
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
        .args(extra)
        .arg("-I")
        .arg(abi_dir().join("include"))
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc (install gcc)");
    assert!(out.status.success(), "gcc rejected {}:\n{}", src.display(), String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().expect("run the C program");
    assert!(run.status.success(), "{} failed", exe.display());
    String::from_utf8(run.stdout).unwrap()
}

/// A deterministic stream of u32s (xorshift), mixed with values at the wrap.
fn inputs(n: usize) -> Vec<u32> {
    let mut x = 0x2545_f491u32;
    let mut v = vec![0, 1, 2, 31, 32, 33, u32::MAX, u32::MAX - 1, u32::MAX - 31, 0x8000_0000, 0x7fff_ffff];
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        // Half small, half anywhere, so differences both wrap and do not.
        v.push(if x & 1 == 0 { x % 70 } else { x });
    }
    v
}

#[test]
fn arithmetic_matches_the_rust_reference() {
    let xs = inputs(600);
    let mut c = String::from("#include <stdio.h>\n#include \"veneer/ring.h\"\n");
    let list = |v: &[u32]| v.iter().map(|x| format!("{x}u")).collect::<Vec<_>>().join(",");
    writeln!(c, "static const uint32_t xs[] = {{{}}};", list(&xs)).unwrap();
    c.push_str(
        r#"int main(void) {
    size_t n = sizeof xs / sizeof xs[0], i;
    size_t sizes[] = {0, 1, 8, 16, 64, 96, 3968, 3969, 4096};
    size_t rings[] = {0, 128, 129, 4096, 8192};
    size_t a, b;
    for (a = 0; a < sizeof rings / sizeof rings[0]; a++)
        for (b = 0; b < sizeof sizes / sizeof sizes[0]; b++)
            printf("slots %u\n", (unsigned)veneer_ring_slots_for(rings[a], sizes[b]));
    for (i = 0; i + 3 < n; i++) {
        uint32_t p = xs[i], q = xs[i + 1], r = xs[i + 2], nr = 1u << (xs[i + 3] % 9);
        printf("%d %u %u %u %u %u\n", veneer_ring_needs_notify(p, q, r),
               (unsigned)veneer_ring_requests_free(p, q, nr), (unsigned)veneer_ring_requests_unconsumed(p, q, r, nr),
               (unsigned)veneer_ring_responses_unconsumed(p, q, r), (unsigned)veneer_ring_rearm(p),
               (unsigned)veneer_ring_slot_offset(p, nr, 96));
    }
    return 0;
}
"#,
    );
    let mut rust = String::new();
    for ring in [0usize, 128, 129, 4096, 8192] {
        for size in [0usize, 1, 8, 16, 64, 96, 3968, 3969, 4096] {
            writeln!(rust, "slots {}", slots_for(ring, size)).unwrap();
        }
    }
    for w in xs.windows(4) {
        let (p, q, r, nr) = (w[0], w[1], w[2], 1u32 << (w[3] % 9));
        writeln!(
            rust,
            "{} {} {} {} {} {}",
            i32::from(needs_notify(p, q, r)),
            requests_free(p, q, nr),
            requests_unconsumed(p, q, r, nr),
            responses_unconsumed(p, q, r),
            rearm(p),
            slot_offset(p, nr, 96)
        )
        .unwrap();
    }
    assert_eq!(run_c("arith", &c, &[]), rust);
}

/// A page in Rust memory for the Rust side of the script.
struct Page(Vec<u8>);

impl SharedPage for Page {
    fn load_u32(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.0[offset..offset + 4].try_into().unwrap())
    }
    fn store_u32(&mut self, offset: usize, value: u32) {
        self.0[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn fence(&mut self) {}
    fn read(&self, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.0[offset..offset + out.len()]);
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
}

/// Ids in slots of the block ring's size.
struct Ids;
impl Protocol for Ids {
    type Request = u64;
    type Response = u64;
    const SLOT_SIZE: usize = 96;
}

#[test]
fn both_sides_match_the_rust_library_step_for_step() {
    // The script: (operation, argument), from the same stream both ways.
    let xs = inputs(3000);
    let script: Vec<(u32, u32)> = xs.chunks(2).map(|c| (c[0] % 9, c[1])).collect();

    let mut page = Page(vec![0xa5; 4096]);
    let mut front = FrontRing::<Ids>::init(&mut page);
    let mut back = BackRing::<Ids>::new();
    let mut rust = String::new();
    let mut next = 0u64;
    for &(op, arg) in &script {
        let line = match op {
            0 => {
                let r = front.push(&mut page, &next).is_ok();
                next += 1;
                format!("push {}", i32::from(r))
            }
            1 => format!("fpublish {}", i32::from(front.publish(&mut page))),
            2 => format!("fpop {:?}", front.pop(&page)),
            3 => format!("frearm {}", i32::from(front.rearm(&mut page))),
            4 => format!("bpop {:?}", back.pop(&page)),
            5 => format!("bpush {}", i32::from(back.push(&mut page, &u64::from(arg)).is_ok())),
            6 => format!("bpublish {}", i32::from(back.publish(&mut page))),
            7 => format!("brearm {}", i32::from(back.rearm(&mut page))),
            _ => {
                // The frontend lies: req_prod jumps somewhere near.
                page.store_u32(0, arg % 100);
                "lie".to_string()
            }
        };
        writeln!(rust, "{line}").unwrap();
    }

    let mut c = String::from("#include <stdio.h>\n#include <string.h>\n#include \"veneer/ring.h\"\n");
    let ops: Vec<String> = script.iter().map(|(o, a)| format!("{{{o}u,{a}u}}")).collect();
    writeln!(c, "static const uint32_t script[][2] = {{{}}};", ops.join(",")).unwrap();
    c.push_str(
        r#"static _Alignas(4096) unsigned char page[4096];
static void opt(const char *what, int some, uint64_t v) {
    if (some) printf("%s Some(%llu)\n", what, (unsigned long long)v); else printf("%s None\n", what);
}
int main(void) {
    struct veneer_front_ring f;
    struct veneer_back_ring b;
    uint64_t next = 0, v;
    size_t i, n = sizeof script / sizeof script[0];
    memset(page, 0xa5, sizeof page);
    veneer_front_ring_init(&f, page, 96);
    veneer_back_ring_init(&b, page, 96);
    for (i = 0; i < n; i++) {
        uint32_t op = script[i][0], arg = script[i][1];
        switch (op) {
        case 0: printf("push %d\n", veneer_front_ring_push(&f, &next, 8) == 0); next++; break;
        case 1: printf("fpublish %d\n", veneer_front_ring_publish(&f) != 0); break;
        case 2: { int s = veneer_front_ring_pop(&f, &v, 8); opt("fpop", s, v); break; }
        case 3: printf("frearm %d\n", veneer_front_ring_rearm(&f) != 0); break;
        case 4: { int s = veneer_back_ring_pop(&b, &v, 8); opt("bpop", s, v); break; }
        case 5: v = arg; printf("bpush %d\n", veneer_back_ring_push(&b, &v, 8) == 0); break;
        case 6: printf("bpublish %d\n", veneer_back_ring_publish(&b) != 0); break;
        case 7: printf("brearm %d\n", veneer_back_ring_rearm(&b) != 0); break;
        default: { uint32_t lie = arg % 100; memcpy(page, &lie, 4); printf("lie\n"); break; }
        }
    }
    return 0;
}
"#,
    );
    let from_c = run_c("sides", &c, &[]);
    for (i, (a, b)) in from_c.lines().zip(rust.lines()).enumerate() {
        assert_eq!(a, b, "step {i}: C and Rust differ");
    }
    assert_eq!(from_c.lines().count(), rust.lines().count());
}

#[test]
fn a_kernel_can_supply_its_own_primitives() {
    // Linux-style overrides replace the builtins: the header uses only the
    // macros, so defining them to counting wrappers is enough.
    let c = r#"#include <stdio.h>
static int fences;
#define VENEER_RING_MB() (fences++)
#define VENEER_RING_LOAD_ACQUIRE(p) (*(volatile const uint32_t *)(p))
#define VENEER_RING_STORE_RELEASE(p, v) (*(volatile uint32_t *)(p) = (v))
#define VENEER_RING_MEMCPY(d, s, n) my_memcpy((d), (s), (n))
#include <stddef.h>
static void *my_memcpy(void *d, const void *s, size_t n) {
    size_t i; for (i = 0; i < n; i++) ((char *)d)[i] = ((const char *)s)[i]; return d;
}
#include "veneer/ring.h"
static _Alignas(4096) unsigned char page[4096];
int main(void) {
    struct veneer_front_ring f;
    unsigned long long x = 7;
    int notify;
    veneer_front_ring_init(&f, page, 96);
    veneer_front_ring_push(&f, &x, 8);
    notify = veneer_front_ring_publish(&f);
    printf("%d %d\n", notify, fences);
    return 0;
}
"#;
    assert_eq!(run_c("overrides", c, &[]), "1 2\n");
}
