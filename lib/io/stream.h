// stream.h — the vet stream: how the programs talk to each other.
//
// A stream is one zstd frame (content checksum on) whose bytes are a sequence of
// msgpack objects:
//   object 0      header map   {"vet": 1, "kind": "<kind>", "program": ..., "version": ..., ...}
//   objects 1..N  record maps  (string keys; schema named by kind, see docs/formats.md)
//   object N+1    trailer map  {"end": true, "records": N}
// A reader that hits end of input before the trailer, or a trailer whose count differs
// from what it read, reports a truncated stream: a writer that died never looks like a
// complete, shorter file. Both ends work record by record in constant memory.
//
// Writing to a path goes to "<path>.tmp.<pid>" and is renamed over <path> only by a
// successful vet_writer_close(); vet_writer_abort() removes it. "-" (or NULL) is stdout.
#ifndef VET_STREAM_H
#define VET_STREAM_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

#include "base/err.h"

#define VET_STREAM_VERSION 1

// ---------------------------------------------------------------------------------------
// Writer
// Usage:
//   vet_writer *w = vet_writer_open(path, "tokens", "vet-tokenize", &err);
//   msgpack_packer *pk = vet_writer_packer(w);
//   vet_writer_header_begin(w, 2);           // 2 extra header entries beyond vet/kind/program/version
//   mp_kv_str(pk, "source", "notes.csv"); mp_kv_int(pk, "max_len", 512);
//   vet_writer_header_end(w, &err);
//   for each record: msgpack_pack_map(pk, n); ...pack n pairs...; vet_writer_record_end(w, &err);
//   vet_writer_close(w, &err);  // trailer, end of frame, fsync, rename; frees w
typedef struct vet_writer vet_writer;

vet_writer *vet_writer_open(const char *path, const char *kind, const char *program, vet_err *err);
msgpack_packer *vet_writer_packer(vet_writer *w);
// Opens the header map with vet/kind/program/version already packed; the caller then packs
// exactly n_extra key/value pairs and calls vet_writer_header_end.
void vet_writer_header_begin(vet_writer *w, uint32_t n_extra);
int vet_writer_header_end(vet_writer *w, vet_err *err);
// Marks the end of one record (the map just packed) and compresses it on.
int vet_writer_record_end(vet_writer *w, vet_err *err);
uint64_t vet_writer_records(const vet_writer *w);
// Writes the trailer, finishes the frame, flushes and (for a path) fsyncs and renames.
// Frees w whatever happens. Returns 0 or -1 (and then no file exists under the final name).
int vet_writer_close(vet_writer *w, vet_err *err);
// vet_writer_close in two steps, for a program with several outputs that must appear together
// or not at all (base/atomic_file's finish and publish): finish writes the trailer and makes the
// file whole under its temporary name (on failure it is gone, w freed, -1); publish renames it
// into place and frees w. Between the two, vet_writer_abort still removes it.
int vet_writer_finish(vet_writer *w, vet_err *err);
int vet_writer_publish(vet_writer *w, vet_err *err);
// Drops everything written: removes the temporary file. Frees w. Safe with NULL.
void vet_writer_abort(vet_writer *w);

// ---------------------------------------------------------------------------------------
// Reader
// Usage:
//   vet_reader *r = vet_reader_open(path, "tokens", &err);    // kind NULL: any kind
//   const msgpack_object *h = vet_reader_header(r);
//   const msgpack_object *rec;
//   int rc;
//   while ((rc = vet_reader_next(r, &rec, &err)) == 1) { ... rec valid until the next call ... }
//   if (rc < 0) fail(err.msg);  // rc == 0: trailer seen and its count verified
//   vet_reader_close(r);
// Errors name the file and the record number: "notes.tok: record 17: truncated stream (...)".
typedef struct vet_reader vet_reader;

vet_reader *vet_reader_open(const char *path, const char *kind, vet_err *err);
// The same over a file already open (a caller that sniffed its first byte and pushed it back:
// a pipe or a FIFO cannot be opened twice). Takes f: the reader closes it (unless it is stdin),
// on failure too. name is what errors call it.
vet_reader *vet_reader_open_file(FILE *f, const char *name, const char *kind, vet_err *err);
const msgpack_object *vet_reader_header(const vet_reader *r);
const char *vet_reader_kind(const vet_reader *r);
const char *vet_reader_path(const vet_reader *r);  // "<stdin>" for "-"
int vet_reader_next(vet_reader *r, const msgpack_object **rec, vet_err *err);
uint64_t vet_reader_records(const vet_reader *r);  // records returned so far
void vet_reader_close(vet_reader *r);

#endif
