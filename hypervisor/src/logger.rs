//! The `log` backend: every hypervisor message goes to the serial port as
//! one line prefixed with `(veneer)`, so it stands apart from guest output.

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::arch::x86_64::serial;

struct SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "error: ",
            Level::Warn => "warning: ",
            _ => "",
        };
        // One piece, so lines of different CPUs do not interleave.
        serial::write_fmt(format_args!("(veneer) {level}{}\n", record.args()));
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

pub fn init() {
    // Only fails if a logger is installed already, which boot never does.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}
