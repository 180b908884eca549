//! `print!` and `println!` on the domain console.

use core::fmt::{self, Write};

struct Console;

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for chunk in s.as_bytes().chunks(hypercall_abi::hypercall::CONSOLE_WRITE_MAX) {
            crate::hypercall::console_write(chunk).map_err(|_| fmt::Error)?;
        }
        Ok(())
    }
}

pub fn print(args: fmt::Arguments<'_>) {
    // Nothing sensible to do if the console refuses.
    let _ = Console.write_fmt(args);
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print::print(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::print::print(format_args!("{}\n", format_args!($($arg)*))) };
}
