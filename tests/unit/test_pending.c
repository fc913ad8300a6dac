// test_pending.c — predictions written in input order although notes finish in any order
// (lib/generate/pending.h): a note finished early waits for those before it, a run of finished
// notes is written at once, a failing write keeps the note it failed on.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "generate/pending.h"

typedef struct {
    char written[16][8];
    int n;
    int fail_at;  // the write of this id fails (-1: none)
} sink;

static int write_to_sink(void *ctx, const vet_prediction *p, vet_err *err) {
    sink *s = ctx;
    if (s->fail_at >= 0 && atoi(p->id) == s->fail_at) return vet_err_io(err, "disk full");
    snprintf(s->written[s->n++], 8, "%s", p->id);
    return 0;
}

// Adds n notes with ids "0", "1", ... (their tags).
static void add_notes(vet_pending *q, int n) {
    vet_err err;
    for (int i = 0; i < n; i++) {
        int64_t tag;
        vet_prediction *p = vet_pending_add(q, &tag, &err);
        CHECK(p != NULL && p->id == NULL);
        if (!p) return;
        char id[8];
        snprintf(id, sizeof id, "%lld", (long long)tag);
        p->id = strdup(id);
        p->text = strdup("some text");  // freed with the record
    }
}

static void test_input_order(void) {
    vet_err err;
    vet_pending *q = vet_pending_new(&err);
    sink s = {.fail_at = -1};
    add_notes(q, 5);
    CHECK(vet_pending_count(q) == 5);
    // 2 and 1 finish first: nothing can be written before 0.
    vet_pending_done(q, 2);
    vet_pending_done(q, 1);
    CHECK(vet_pending_flush(q, write_to_sink, &s, &err) == 0 && s.n == 0);
    // 0 finishes: 0, 1, 2 go out at once, in order.
    vet_pending_done(q, 0);
    CHECK(vet_pending_flush(q, write_to_sink, &s, &err) == 3);
    CHECK(s.n == 3 && strcmp(s.written[0], "0") == 0 && strcmp(s.written[2], "2") == 0);
    CHECK(vet_pending_count(q) == 2);
    CHECK(vet_pending_get(q, 1) == NULL);  // written and forgotten
    CHECK(vet_pending_get(q, 3) != NULL && strcmp(vet_pending_get(q, 3)->id, "3") == 0);
    // New notes keep numbering on after the written ones.
    add_notes(q, 1);
    CHECK(vet_pending_get(q, 5) != NULL && strcmp(vet_pending_get(q, 5)->id, "5") == 0);
    CHECK(vet_pending_get(q, 6) == NULL);
    vet_pending_done(q, 5);
    vet_pending_done(q, 4);
    vet_pending_done(q, 3);
    CHECK(vet_pending_flush(q, write_to_sink, &s, &err) == 3);
    CHECK(s.n == 6 && strcmp(s.written[3], "3") == 0 && strcmp(s.written[5], "5") == 0);
    CHECK(vet_pending_count(q) == 0);
    vet_pending_free(q);
}

static void test_failed_write_keeps_the_note(void) {
    vet_err err;
    vet_pending *q = vet_pending_new(&err);
    sink s = {.fail_at = 1};
    add_notes(q, 3);
    for (int i = 0; i < 3; i++) vet_pending_done(q, i);
    CHECK(vet_pending_flush(q, write_to_sink, &s, &err) == -1);
    CHECK(err.kind == VET_E_IO);
    CHECK(s.n == 1 && vet_pending_count(q) == 2);  // 0 written; 1 and 2 held
    CHECK(vet_pending_get(q, 1) != NULL);
    vet_pending_free(q);  // frees what is still held (the sanitized build checks)
    vet_pending_free(NULL);
}

int main(void) {
    RUN(test_input_order);
    RUN(test_failed_write_keeps_the_note);
    CHECK_EXIT();
}
