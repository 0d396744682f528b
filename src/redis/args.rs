//! A command's arguments, borrowed from Redis for the duration of the call.

use redis_module::raw;
use std::os::raw::c_int;

/// The arguments of one command call (no copies, no reference counting).
pub struct Args<'a> {
    argv: &'a [*mut raw::RedisModuleString],
}

impl<'a> Args<'a> {
    /// # Safety
    /// `argv` must point to `argc` valid strings that outlive the returned value.
    pub unsafe fn new(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Self {
        let argv = if argv.is_null() || argc <= 0 {
            &[][..]
        } else {
            // SAFETY: the caller guarantees `argc` valid pointers at `argv`.
            unsafe { std::slice::from_raw_parts(argv, argc as usize) }
        };
        Args { argv }
    }

    pub fn len(&self) -> usize {
        self.argv.len()
    }

    pub fn bytes(&self, i: usize) -> &'a [u8] {
        // SAFETY: every element of `argv` is a valid string for 'a (see `new`).
        unsafe { string_bytes(self.argv[i]) }
    }

    /// The raw string at `i`, for Redis calls that take one (opening a key).
    pub fn raw(&self, i: usize) -> *mut raw::RedisModuleString {
        self.argv[i]
    }

    /// The raw strings from `i` on, for a call that takes a vector of them (`RM_Call` "v").
    pub fn raw_from(&self, i: usize) -> &'a [*mut raw::RedisModuleString] {
        &self.argv[i..]
    }
}

/// The bytes of a Redis string.
///
/// # Safety
/// `s` must be a valid Redis string that outlives `'a` and is not changed meanwhile.
pub unsafe fn string_bytes<'a>(s: *const raw::RedisModuleString) -> &'a [u8] {
    let mut len = 0;
    // SAFETY: `s` is valid (the caller's promise); Redis returns its buffer and length.
    unsafe {
        let p = raw::RedisModule_StringPtrLen.unwrap()(s, &mut len);
        std::slice::from_raw_parts(p.cast::<u8>(), len)
    }
}
