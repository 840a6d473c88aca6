/* jscan.h - a strict JSON validator (RFC 8259) that allocates nothing and reports the spans of
 * the top-level members of an object: what lets a node pass an upstream's answer on without
 * parsing it into a tree and serializing it again (docs/federation.md, "Answers passed through").
 *
 * Stricter than json-c on purpose: whatever it accepts, json-c (as common/jsonrpc.c drives it)
 * accepts too and reads with the same meaning, so a caller may fall back to the full parse for
 * anything refused here and get exactly today's answer or today's error. */
#ifndef MCPGW_COMMON_JSCAN_H
#define MCPGW_COMMON_JSCAN_H

#include <stddef.h>

/* Containers nested deeper than this are refused. json-c's tokener, at the depth 64 jsonrpc.c
 * gives it, takes 63 levels holding values (and an empty 64th): we stop at 63. */
#define MCPGW_JSCAN_MAX_DEPTH 63
/* The most top-level members reported; an object with more is still validated (t->more). */
#define MCPGW_JSCAN_MAX_MEMBERS 8

enum mcpgw_jscan_err {
    MCPGW_JSCAN_OK,
    MCPGW_JSCAN_E_SYNTAX, /* a missing or misplaced token, an unknown literal, trailing text */
    MCPGW_JSCAN_E_STRING, /* a control character, an unknown escape, an unpaired surrogate escape */
    MCPGW_JSCAN_E_UTF8,   /* not UTF-8: overlong, surrogate, over U+10FFFF, cut short */
    MCPGW_JSCAN_E_NUMBER, /* malformed: "01", "1.", "-", ".5", "1e", "+1" */
    MCPGW_JSCAN_E_RANGE,  /* an integer outside -2^63..2^64-1 (json-c would clamp it), a number
                           * that is not finite as a double, or longer than 63 characters */
    MCPGW_JSCAN_E_DEPTH,  /* nested deeper than MCPGW_JSCAN_MAX_DEPTH */
    MCPGW_JSCAN_E_KEY,    /* a key holding \u0000 (json-c keys end at a NUL: it would change) */
    MCPGW_JSCAN_E_DUP,    /* a top-level key given twice (compared as written) */
    MCPGW_JSCAN_E_NOT_OBJECT, /* mcpgw_jscan_object: the text is valid JSON but no object */
    MCPGW_JSCAN_E_COUNT
};
const char *mcpgw_jscan_err_str(enum mcpgw_jscan_err e);

/* One top-level member: the key as written between its quotes (escapes left as they are), and
 * the value's text from its first to its last character. Both point into the scanned buffer. */
struct mcpgw_jscan_member {
    const char *key, *val;
    size_t key_len, val_len;
};

struct mcpgw_jscan_top {
    size_t n;       /* members reported, at most MCPGW_JSCAN_MAX_MEMBERS */
    int more;       /* the object had more members than were reported */
    size_t err_off; /* on failure: the offset where the text went wrong */
    struct mcpgw_jscan_member m[MCPGW_JSCAN_MAX_MEMBERS];
};

/* Validates buf[0..len) (not NUL-terminated; whitespace allowed around the value) as one JSON
 * text, and reports nothing. Returns MCPGW_JSCAN_OK or the first error; *err_off (may be NULL)
 * gets its offset. */
enum mcpgw_jscan_err mcpgw_jscan_value(const char *buf, size_t len, size_t *err_off);

/* Validates buf[0..len) as one JSON text that must be an object, and fills t with the spans of
 * its top-level members in order (borrowed from buf). A top-level key given twice is refused
 * (E_DUP) when both are reported. Returns MCPGW_JSCAN_OK or the first error. */
enum mcpgw_jscan_err mcpgw_jscan_object(const char *buf, size_t len, struct mcpgw_jscan_top *t);

/* The reported member whose key is exactly key (as written, no escapes), or NULL. */
const struct mcpgw_jscan_member *mcpgw_jscan_get(const struct mcpgw_jscan_top *t, const char *key);

/* The pieces the scan is made of, shared with common/jsonrpc.c's exact reader. */

/* Length of the well-formed UTF-8 sequence at p (Unicode 15, table 3-7): 1 for ASCII, 0 when
 * there is none (a continuation or C0/C1/F5-FF lead byte, an overlong form, a surrogate, a code
 * point over U+10FFFF, a sequence cut short by end). p < end. */
size_t mcpgw_jscan_utf8_len(const unsigned char *p, const unsigned char *end);
/* The code unit of the four hex digits at p, or -1. */
long mcpgw_jscan_hex4(const unsigned char *p, const unsigned char *end);
/* p is at a '-' or a digit: the end of the RFC 8259 number there, or NULL when it is malformed or
 * runs on into more number characters ("01", "1.", "1.2.3", "-Infinity"). *integer says whether
 * it has neither fraction nor exponent. */
const unsigned char *mcpgw_jscan_number(const unsigned char *p, const unsigned char *end,
                                        int *integer);
/* Whether the integer text [b, e) (optional '-', digits without a leading zero) lies in
 * -2^63..2^64-1, what json-c holds exactly. */
int mcpgw_jscan_int_fits(const unsigned char *b, const unsigned char *e);

#endif
