//! dozen's guardian as a freestanding program: no libc, no allocator, a few kilobytes.
//!
//! `build.rs` compiles this file on its own (not as part of the crate) for Linux on x86_64 and
//! aarch64, and `src/guardian.rs` embeds the result and runs it from a memfd. It does what the
//! `/bin/sh` fallback script in `src/guardian.rs` does, in about a hundredth of the memory:
//!
//! - it ignores SIGINT, SIGTERM, SIGHUP and SIGQUIT, so only dozen's death ends its watch;
//! - it reads lines from standard input: `c DIR` (a cgroup to kill), `p PGID` (a process group
//!   to kill), `u PGID` (forget that group), `x` (dozen is exiting cleanly: exit at once);
//! - when standard input ends without `x`, dozen died: it writes `1` to each cgroup's
//!   `cgroup.kill`, sends SIGKILL to each process group, then removes the cgroups (and their
//!   direct child cgroups), retrying for up to five seconds while they empty.
//!
//! Limits: up to 16,384 process groups and 32 KiB of cgroup paths at once; what does not fit
//! is not watched (dozen's own stop still handles it). Lines longer than 4 KiB are ignored.

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::mem::MaybeUninit;

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const CLOSE: usize = 3;
    pub const RT_SIGACTION: usize = 13;
    pub const NANOSLEEP: usize = 35;
    pub const KILL: usize = 62;
    pub const GETDENTS64: usize = 217;
    pub const EXIT_GROUP: usize = 231;
    pub const OPENAT: usize = 257;
    pub const UNLINKAT: usize = 263;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const READ: usize = 63;
    pub const WRITE: usize = 64;
    pub const CLOSE: usize = 57;
    pub const RT_SIGACTION: usize = 134;
    pub const NANOSLEEP: usize = 101;
    pub const KILL: usize = 129;
    pub const GETDENTS64: usize = 61;
    pub const EXIT_GROUP: usize = 94;
    pub const OPENAT: usize = 56;
    pub const UNLINKAT: usize = 35;
}

#[cfg(target_arch = "x86_64")]
global_asm!(
    ".globl _start",
    "_start:",
    "xor ebp, ebp",
    "and rsp, -16",
    "call guardian_main",
    "ud2",
);

#[cfg(target_arch = "aarch64")]
global_asm!(
    ".globl _start",
    "_start:",
    "mov x29, #0",
    "mov x30, #0",
    "bl guardian_main",
    "brk #0",
);

#[cfg(target_arch = "x86_64")]
unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    unsafe {
        asm!(
            "svc 0",
            in("x8") n,
            inlateout("x0") a as isize => ret,
            in("x1") b,
            in("x2") c,
            in("x3") d,
            options(nostack),
        );
    }
    ret
}

const EINTR: isize = -4;
const ENOENT: isize = -2;
const AT_FDCWD: isize = -100;
const AT_REMOVEDIR: usize = 0x200;
const O_WRONLY: usize = 1;
const O_DIRECTORY: usize = 0o200000;
const O_CLOEXEC: usize = 0o2000000;
const SIGKILL: usize = 9;
const DT_DIR: u8 = 4;

const MAX_GROUPS: usize = 16 * 1024;
const PATH_SPACE: usize = 32 * 1024;
const MAX_CGROUPS: usize = 256;
const LINE: usize = 4096;

fn exit(code: usize) -> ! {
    unsafe {
        syscall4(nr::EXIT_GROUP, code, 0, 0, 0);
    }
    // exit_group does not return.
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(101)
}

/// The prebuilt `core` refers to this from its unwind tables; with `panic=abort` nothing calls it.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// The kernel's `struct sigaction` as `rt_sigaction` reads it (handler, flags, restorer, mask).
#[repr(C)]
struct SigAction {
    handler: usize,
    flags: usize,
    restorer: usize,
    mask: u64,
}

fn ignore_signals() {
    const SIG_IGN: usize = 1;
    let act = SigAction {
        handler: SIG_IGN,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SIGHUP, SIGINT, SIGQUIT, SIGTERM.
    for sig in [1usize, 2, 3, 15] {
        unsafe {
            syscall4(nr::RT_SIGACTION, sig, &act as *const _ as usize, 0, 8);
        }
    }
}

/// What dozen asked the guardian to watch.
struct Watch {
    groups: [MaybeUninit<i32>; MAX_GROUPS],
    group_count: usize,
    /// NUL-terminated cgroup paths, one after another.
    paths: [MaybeUninit<u8>; PATH_SPACE],
    path_used: usize,
    /// Where each path starts in `paths`.
    starts: [MaybeUninit<usize>; MAX_CGROUPS],
    cgroup_count: usize,
}

impl Watch {
    fn group(&self, i: usize) -> i32 {
        unsafe { self.groups[i].assume_init() }
    }

    fn cgroup(&self, i: usize) -> *const u8 {
        unsafe { self.paths.as_ptr().add(self.starts[i].assume_init()) as *const u8 }
    }

    fn add_group(&mut self, pgid: i32) {
        if self.group_count < MAX_GROUPS {
            self.groups[self.group_count] = MaybeUninit::new(pgid);
            self.group_count += 1;
        }
    }

    fn forget_group(&mut self, pgid: i32) {
        let mut i = 0;
        while i < self.group_count {
            if self.group(i) == pgid {
                self.group_count -= 1;
                self.groups[i] = self.groups[self.group_count];
                return;
            }
            i += 1;
        }
    }

    fn add_cgroup(&mut self, path: &[u8]) {
        if path.is_empty()
            || self.cgroup_count == MAX_CGROUPS
            || self.path_used + path.len() + 1 > PATH_SPACE
        {
            return;
        }
        self.starts[self.cgroup_count] = MaybeUninit::new(self.path_used);
        for &b in path {
            self.paths[self.path_used] = MaybeUninit::new(b);
            self.path_used += 1;
        }
        self.paths[self.path_used] = MaybeUninit::new(0);
        self.path_used += 1;
        self.cgroup_count += 1;
    }
}

fn parse_pgid(text: &[u8]) -> Option<i32> {
    if text.is_empty() || text.len() > 9 {
        return None;
    }
    let mut n: i32 = 0;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (b - b'0') as i32;
    }
    (n > 0).then_some(n)
}

/// Act on one line; true when dozen said goodbye.
fn obey(watch: &mut Watch, line: &[u8]) -> bool {
    let (kind, arg) = match line {
        [k, b' ', rest @ ..] => (*k, rest),
        [k] => (*k, &[][..]),
        _ => return false,
    };
    match kind {
        b'c' => watch.add_cgroup(arg),
        b'p' => {
            if let Some(p) = parse_pgid(arg) {
                watch.add_group(p);
            }
        }
        b'u' => {
            if let Some(p) = parse_pgid(arg) {
                watch.forget_group(p);
            }
        }
        b'x' => return true,
        _ => {}
    }
    false
}

/// Write `1` to `<dir>/cgroup.kill`.
fn kill_cgroup(dir: *const u8) {
    let mut path = [0u8; LINE + 16];
    let mut n = 0;
    unsafe {
        while *dir.add(n) != 0 {
            if n >= LINE {
                return;
            }
            path[n] = *dir.add(n);
            n += 1;
        }
    }
    for &b in b"/cgroup.kill" {
        path[n] = b;
        n += 1;
    }
    path[n] = 0;
    unsafe {
        let fd = syscall4(
            nr::OPENAT,
            AT_FDCWD as usize,
            path.as_ptr() as usize,
            O_WRONLY | O_CLOEXEC,
            0,
        );
        if fd >= 0 {
            syscall4(nr::WRITE, fd as usize, b"1".as_ptr() as usize, 1, 0);
            syscall4(nr::CLOSE, fd as usize, 0, 0, 0);
        }
    }
}

/// Remove the direct child directories of `dir` (a cgroup's children), ignoring failures.
fn remove_children(dir: *const u8) {
    let fd = unsafe {
        syscall4(
            nr::OPENAT,
            AT_FDCWD as usize,
            dir as usize,
            O_DIRECTORY | O_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        let got = unsafe {
            syscall4(
                nr::GETDENTS64,
                fd as usize,
                buf.as_mut_ptr() as usize,
                4096,
                0,
            )
        };
        if got <= 0 {
            break;
        }
        let mut at = 0usize;
        while at + 19 < got as usize {
            // struct linux_dirent64: ino u64, off i64, reclen u16, type u8, name...
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen == 0 {
                break;
            }
            let kind = buf[at + 18];
            let name = at + 19;
            let dot = buf[name] == b'.'
                && (buf[name + 1] == 0 || (buf[name + 1] == b'.' && buf[name + 2] == 0));
            if kind == DT_DIR && !dot {
                unsafe {
                    syscall4(
                        nr::UNLINKAT,
                        fd as usize,
                        buf.as_ptr().add(name) as usize,
                        AT_REMOVEDIR,
                        0,
                    );
                }
            }
            at += reclen;
        }
    }
    unsafe {
        syscall4(nr::CLOSE, fd as usize, 0, 0, 0);
    }
}

/// Remove a cgroup once its processes are gone: up to 50 tries, 100 ms apart.
fn remove_cgroup(dir: *const u8) {
    let pause: [i64; 2] = [0, 100_000_000];
    for _ in 0..50 {
        remove_children(dir);
        let r = unsafe {
            syscall4(
                nr::UNLINKAT,
                AT_FDCWD as usize,
                dir as usize,
                AT_REMOVEDIR,
                0,
            )
        };
        if r == 0 || r == ENOENT {
            return;
        }
        unsafe {
            syscall4(nr::NANOSLEEP, pause.as_ptr() as usize, 0, 0, 0);
        }
    }
}

fn clean_up(watch: &Watch) {
    for i in 0..watch.cgroup_count {
        kill_cgroup(watch.cgroup(i));
    }
    for i in 0..watch.group_count {
        let pgid = watch.group(i) as isize;
        unsafe {
            syscall4(nr::KILL, (-pgid) as usize, SIGKILL, 0, 0);
        }
    }
    for i in 0..watch.cgroup_count {
        remove_cgroup(watch.cgroup(i));
    }
}

/// The one `Watch`, touched only by `guardian_main` (the program has a single thread).
struct Only(core::cell::UnsafeCell<Watch>);

unsafe impl Sync for Only {}

static WATCH: Only = Only(core::cell::UnsafeCell::new(Watch {
    groups: [const { MaybeUninit::uninit() }; MAX_GROUPS],
    group_count: 0,
    paths: [const { MaybeUninit::uninit() }; PATH_SPACE],
    path_used: 0,
    starts: [const { MaybeUninit::uninit() }; MAX_CGROUPS],
    cgroup_count: 0,
}));

#[unsafe(no_mangle)]
extern "C" fn guardian_main() -> ! {
    ignore_signals();
    // A static, not a local: its pages (in .bss) are only touched as they fill, where a large
    // stack frame would be probed page by page up front.
    let watch = unsafe { &mut *WATCH.0.get() };
    let mut line = [0u8; LINE];
    let mut len = 0usize;
    let mut too_long = false;
    let mut input = [0u8; 1024];
    loop {
        let got = unsafe { syscall4(nr::READ, 0, input.as_mut_ptr() as usize, input.len(), 0) };
        if got == EINTR {
            continue;
        }
        if got <= 0 {
            break;
        }
        for &b in &input[..got as usize] {
            if b == b'\n' {
                if !too_long && obey(watch, &line[..len]) {
                    exit(0);
                }
                len = 0;
                too_long = false;
            } else if len < LINE {
                line[len] = b;
                len += 1;
            } else {
                too_long = true;
            }
        }
    }
    clean_up(watch);
    exit(0)
}

// The compiler may call these for copies and fills; there is no libc to provide them. Volatile
// accesses keep it from turning the loops back into calls to themselves.

#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize) <= (src as usize) {
        for i in 0..n {
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    } else {
        for i in (0..n).rev() {
            unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
        }
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        unsafe { dst.add(i).write_volatile(c as u8) };
    }
    dst
}

#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
    }
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    unsafe { memcmp(a, b, n) }
}
