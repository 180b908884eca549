//! A domain's `console_write` output, as whole lines (SPEC §11.2).
//!
//! Guests write a line in pieces (a formatter emits each argument apart),
//! and with several domains running at once on several CPUs the pieces of
//! different writers would interleave on the one serial port. So each vCPU
//! gathers its bytes until a newline, and the line goes out in one piece,
//! prefixed with the domain id (`(d1) `) unless the writer is domain 0.

use alloc::format;
use alloc::vec::Vec;

/// The longest line kept whole; a longer one is cut into lines this long.
pub const LINE_MAX: usize = 512;

/// The partial lines of a domain's vCPUs.
pub struct ConsoleLines {
    prefix_len: usize,
    /// Per vCPU: the prefix, then the line so far.
    lines: Vec<Vec<u8>>,
}

impl ConsoleLines {
    pub fn new(domain: u32, vcpus: u32) -> ConsoleLines {
        let prefix = if domain == 0 { Vec::new() } else { format!("(d{domain}) ").into_bytes() };
        ConsoleLines { prefix_len: prefix.len(), lines: (0..vcpus).map(|_| prefix.clone()).collect() }
    }

    /// Appends `bytes` written by `vcpu`; hands each line it completes,
    /// prefix and newline included, to `out` in one piece.
    pub fn write(&mut self, vcpu: usize, bytes: &[u8], out: &mut dyn FnMut(&[u8])) {
        let line = &mut self.lines[vcpu];
        for &b in bytes {
            line.push(b);
            if b == b'\n' {
                out(line);
                line.truncate(self.prefix_len);
            } else if line.len() - self.prefix_len == LINE_MAX {
                line.push(b'\n');
                out(line);
                line.truncate(self.prefix_len);
            }
        }
    }

    /// Hands out every partial line, ended with a newline (the domain is
    /// ending).
    pub fn flush(&mut self, out: &mut dyn FnMut(&[u8])) {
        for line in &mut self.lines {
            if line.len() > self.prefix_len {
                line.push(b'\n');
                out(line);
                line.truncate(self.prefix_len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(c: &mut ConsoleLines, writes: &[(usize, &str)]) -> Vec<String> {
        let mut lines = Vec::new();
        for &(vcpu, s) in writes {
            c.write(vcpu, s.as_bytes(), &mut |l| lines.push(String::from_utf8(l.to_vec()).unwrap()));
        }
        lines
    }

    #[test]
    fn pieces_of_two_vcpus_come_out_as_whole_prefixed_lines() {
        let mut c = ConsoleLines::new(3, 2);
        let lines = collect(&mut c, &[(0, "Test "), (1, "vCPU 1 "), (0, "result: "), (1, "says\nhi"), (0, "SUCCESS\n")]);
        assert_eq!(lines, ["(d3) vCPU 1 says\n", "(d3) Test result: SUCCESS\n"]);
        let mut rest = Vec::new();
        c.flush(&mut |l| rest.push(String::from_utf8(l.to_vec()).unwrap()));
        assert_eq!(rest, ["(d3) hi\n"], "the partial line at the end");
        c.flush(&mut |_| panic!("nothing left"));
    }

    #[test]
    fn domain_0_is_not_prefixed_and_long_lines_are_cut() {
        let mut c = ConsoleLines::new(0, 1);
        assert_eq!(collect(&mut c, &[(0, "plain\n")]), ["plain\n"]);
        let mut c = ConsoleLines::new(1, 1);
        let long = "x".repeat(LINE_MAX + 3);
        let lines = collect(&mut c, &[(0, &long), (0, "\n")]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], format!("(d1) {}\n", "x".repeat(LINE_MAX)));
        assert_eq!(lines[1], "(d1) xxx\n");
    }
}
