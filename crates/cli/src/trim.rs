//! Give back the memory of start-up code once a long-running command has settled.
//!
//! `dozen` is one binary for the runner, the server, the client and the doctor. Starting up
//! (argument parsing, reading the Procfile and env files, spawning the formation) touches code
//! pages spread over the whole program text, and the kernel maps them in chunks around every
//! page touched. Those pages stay resident for as long as the command runs, although an idle
//! supervisor only needs its waiting loops. [`release_startup_pages`] tells the kernel to drop
//! the program's read-only pages from this process (`MADV_PAGEOUT`); a page that is needed again
//! is mapped back in on first use, from the page cache or the file. It is the same idea as an
//! operating system kernel freeing its init sections after boot.

use std::path::Path;

/// `MADV_PAGEOUT` (Linux 5.4); older kernels answer `EINVAL` and nothing changes.
const MADV_PAGEOUT: libc::c_int = 21;

/// Drop this process's mappings of its own program file's read-only pages (text, read-only
/// data) from its resident memory. Best effort: any failure leaves memory as it was.
pub fn release_startup_pages() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, end) in read_only_ranges(&maps, &exe) {
        // SAFETY: the range is a whole mapping of this process, read from /proc/self/maps, and
        // not writable: paging it out cannot change what any code observes, only when the
        // kernel reads it back in.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, MADV_PAGEOUT);
        }
    }
}

/// The address ranges of `exe`'s read-only (not writable) mappings in a `/proc/PID/maps` text.
fn read_only_ranges(maps: &str, exe: &Path) -> Vec<(usize, usize)> {
    let exe = exe.as_os_str().to_string_lossy();
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(6, ' ');
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?.trim_start();
            if path != exe || perms.contains('w') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let a = usize::from_str_radix(a, 16).ok()?;
            let b = usize::from_str_radix(b, 16).ok()?;
            (a < b).then_some((a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_program_files_read_only_mappings() {
        let maps = "\
5600-5700 r--p 00000000 fd:01 42  /usr/bin/dozen
5700-5900 r-xp 00100000 fd:01 42  /usr/bin/dozen
5900-5a00 rw-p 00300000 fd:01 42  /usr/bin/dozen
7f00-7f80 r-xp 00000000 fd:01 77  /usr/lib/libc.so.6
7f80-7f90 rw-p 00000000 00:00 0 
8000-8100 r-xp 00000000 fd:01 43  /usr/bin/dozen-other
";
        let ranges = read_only_ranges(maps, Path::new("/usr/bin/dozen"));
        assert_eq!(ranges, vec![(0x5600, 0x5700), (0x5700, 0x5900)]);
    }
}
