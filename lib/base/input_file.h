// input_file.h — opening a file a program reads as a stream (notes, predictions, a codes list),
// and telling whether an output would overwrite an input.
//
// A directory fails only at the first read with a bare "Is a directory", and a device such as
// /dev/zero is read forever. So a named input must be a regular file or a pipe (a fifo, <(...),
// /dev/stdin on a pipe); anything else is refused up front with the reason, as VET_E_IO (exit 3).
// stdin ("-") is taken as it comes, except a directory: the readers bound every line and row.
#ifndef VET_INPUT_FILE_H
#define VET_INPUT_FILE_H

#include <stdio.h>

#include "base/err.h"

// path, or stdin for "-" or NULL. what names the file's role in messages ("notes", "codes file").
// NULL with err (VET_E_IO) when it cannot be opened or is a directory or a device.
FILE *vet_input_open(const char *path, const char *what, vet_err *err);

// Closes what vet_input_open returned (stdin is left open). NULL is fine.
void vet_input_close(FILE *f);

// Skips a UTF-8 byte order mark (base/utf8.h) at the start of f, pushing back whatever else it
// read (glibc allows for up to three bytes).
void vet_skip_bom(FILE *f);

// 1 when the output path (NULL or "-": stdout) names the same regular file as the input
// (NULL or "-": stdin): same device and inode, so hard links and other spellings count. 0
// otherwise, and when either does not exist yet or is a device or pipe (those are not destroyed
// by writing).
int vet_same_file(const char *output, const char *input);

// VET_E_USAGE (-1) when output names input: "FLAG OUT is the input file IN: writing it would
// destroy what is being read (choose another output)". 0 otherwise. Called before anything is
// opened for writing.
int vet_refuse_overwrite(const char *flag, const char *output, const char *input, vet_err *err);

// The same for an input that is a model or adapter folder (or a file, then as above): VET_E_USAGE
// when output names a file that exists inside the folder dir (its parent folder is dir, by device
// and inode): "FLAG OUT would overwrite a file of IN_FLAG DIR: ...". Writing a new file into it
// is fine; replacing one of its files (weights, config, tokenizer) would destroy the input. dir
// NULL: 0.
int vet_refuse_overwrite_in(const char *flag, const char *output, const char *in_flag, const char *dir,
                            vet_err *err);

// 1 when a and b name the same existing folder (device and inode).
int vet_same_dir(const char *a, const char *b);

// One input of a program, as its flag names it ("INPUT" for the operand) and the path given
// (NULL: not given; "-": stdin). Callers spell an operand that defaults to stdin as "-".
typedef struct {
    const char *flag, *path;
} vet_named_input;

// VET_E_USAGE (-1) when two of the n inputs are stdin: the second would read what the first
// left (nothing, or the tail of a stream of another kind) and fail with a message about the
// wrong file. "FLAG_A - and FLAG_B - both read stdin: give one of them as a file". 0 otherwise.
int vet_refuse_stdin_twice(const vet_named_input *in, int n, vet_err *err);

#endif
