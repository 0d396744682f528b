//! A command's arguments, borrowed from Redis for the duration of the call.

use redis_module::raw;
use std::marker::PhantomData;
use std::os::raw::c_int;

/// A Redis string that stays valid, and unchanged, for `'a`: a command's argument, or a string
/// the module made and frees after `'a`. Redis calls that take a string take this, so they need
/// no promise from their caller.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct RStr<'a> {
    ptr: *mut raw::RedisModuleString,
    _valid_for: PhantomData<&'a raw::RedisModuleString>,
}

impl<'a> RStr<'a> {
    /// # Safety
    /// `ptr` must be a valid Redis string that is neither freed nor changed during `'a`.
    pub unsafe fn new(ptr: *mut raw::RedisModuleString) -> RStr<'a> {
        RStr {
            ptr,
            _valid_for: PhantomData,
        }
    }

    pub fn as_ptr(self) -> *mut raw::RedisModuleString {
        self.ptr
    }

    /// The string's bytes, borrowed from Redis.
    pub fn bytes(self) -> &'a [u8] {
        // SAFETY: the string is valid and unchanged for 'a (the type's promise).
        unsafe { string_bytes(self.ptr) }
    }
}

/// The arguments of one command call (no copies, no reference counting).
pub struct Args<'a> {
    argv: &'a [RStr<'a>],
}

impl<'a> Args<'a> {
    /// # Safety
    /// `argv` must point to `argc` valid strings that outlive the returned value.
    pub unsafe fn new(argv: *mut *mut raw::RedisModuleString, argc: c_int) -> Self {
        let argv = if argv.is_null() || argc <= 0 {
            &[][..]
        } else {
            // SAFETY: the caller guarantees `argc` valid strings at `argv` for 'a; `RStr` is a
            // transparent wrapper of the pointer, so the slice is read as it is.
            unsafe { std::slice::from_raw_parts(argv.cast::<RStr<'a>>(), argc as usize) }
        };
        Args { argv }
    }

    pub fn len(&self) -> usize {
        self.argv.len()
    }

    pub fn bytes(&self, i: usize) -> &'a [u8] {
        self.argv[i].bytes()
    }

    /// The Redis string at `i`, for Redis calls that take one (opening a key).
    pub fn raw(&self, i: usize) -> RStr<'a> {
        self.argv[i]
    }

    /// The Redis strings from `i` on, for a call that takes a vector of them (`RM_Call` "v").
    pub fn raw_from(&self, i: usize) -> &'a [RStr<'a>] {
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
