/*
 * edgeprune host <-> device protocol: THE contract between firmware/ and bench/ (mirrored by
 * bench/protocol.py; tests/device/test_protocol_mirror.py parses this file to keep the two equal).
 *
 * Wire format. Every message is one frame:
 *   COBS( body ) 0x00           -- 0x00 never occurs inside a frame, so a receiver resyncs at the next 0x00
 *   body = [version u8][type u8][seq u16][len u16][payload: len bytes][crc32 u32]
 * All integers are little-endian. crc32 is the IEEE/zlib CRC-32 of version..payload.
 *
 * Requests go host -> device with a type from EP_MSG_*; the device answers each request with exactly
 * one reply frame carrying the same seq and type (request type | EP_REPLY_FLAG), or EP_MSG_ERROR.
 * seq: HELLO and RESET (re)synchronise and may carry any seq; every other request must be newer than
 * the last accepted one, i.e. (seq - last - 1) mod 2^16 < 0x8000; a duplicate or older seq is refused
 * with EP_ST_SEQUENCE (detail: the next expected seq). A host increments seq for every request it sends.
 *
 * SET_BAUD: the reply leaves at the old rate, then the board switches its UART. A host confirms the rate with
 * a HELLO at the new rate; when no valid frame arrives at the new rate within EP_BAUD_GRACE_MS the board goes
 * back to the old one (a USB bridge that cannot carry the rate does not strand the link). A board that
 * cannot run at the rate answers EP_ST_BAD_ARG and stays; a link without a rate (QEMU's UART models,
 * Ethernet) accepts every rate and ignores it. A reset returns to EP_BAUD_DEFAULT.
 *
 * Payload layouts are the packed structs below (no padding: every struct is laid out so that natural
 * alignment adds none, and the _Static_asserts pin the sizes). Variable-length tails are noted.
 */
#ifndef EP_PROTOCOL_H
#define EP_PROTOCOL_H

#include <stdint.h>

#define EP_PROTOCOL_VERSION 1

/* Limits. */
#define EP_MAX_PAYLOAD 1024u                               /* bytes of payload in one frame */
#define EP_FRAME_OVERHEAD 10u                              /* header 6 + crc 4 */
#define EP_MAX_BODY (EP_MAX_PAYLOAD + EP_FRAME_OVERHEAD)
#define EP_MAX_ENCODED (EP_MAX_BODY + EP_MAX_BODY / 254u + 2u) /* COBS worst case + delimiter */
#define EP_CHUNK_HEADER 4u                                 /* LOAD_CHUNK: u32 offset before the bytes */
#define EP_MAX_CHUNK (EP_MAX_PAYLOAD - EP_CHUNK_HEADER)
#define EP_MAX_RUNS 128u                                   /* INFER n: 1..EP_MAX_RUNS */
#define EP_MAX_PAIRS 8u                                    /* SET_SEQUENCE recurrent pairs */
#define EP_BUILD_ID_LEN 32u                                /* NUL-padded ASCII */
#define EP_BOARD_LEN 16u                                   /* NUL-padded ASCII */
#define EP_MAX_DIMS 6u
#define EP_BAUD_DEFAULT 115200u                            /* UART rate after every reset */
#define EP_BAUD_GRACE_MS 1000u /* SET_BAUD: no valid frame at the new rate within this long -> the old rate */

#define EP_REPLY_FLAG 0x80u

/* Message types (requests; replies are type | EP_REPLY_FLAG). */
#define EP_MSG_HELLO 0x01u        /* -> empty; <- ep_hello_t */
#define EP_MSG_LOAD_BEGIN 0x02u   /* -> ep_load_begin_t; <- empty */
#define EP_MSG_LOAD_CHUNK 0x03u   /* -> ep_load_chunk_t + bytes (offset must equal bytes received); <- empty */
#define EP_MSG_LOAD_END 0x04u     /* -> empty; SHA-256 verified, then ep_model_init; <- ep_load_reply_t */
#define EP_MSG_SET_SEQUENCE 0x05u /* -> ep_set_sequence_t + npairs x {u8 output, u8 input}; <- empty */
#define EP_MSG_SET_INPUT 0x06u    /* -> ep_set_input_t + bytes; <- empty */
#define EP_MSG_INFER 0x07u        /* -> ep_infer_t; <- ep_infer_reply_t + n x u32 count (in run order) */
#define EP_MSG_GET_OUTPUT 0x08u   /* -> ep_get_output_t; <- ep_output_reply_t + bytes */
#define EP_MSG_POWER 0x09u        /* -> empty; <- ep_power_t */
#define EP_MSG_RESET 0x0Au        /* -> empty; <- empty, then the device resets */
#define EP_MSG_IO_INFO 0x0Bu      /* -> ep_io_info_req_t; <- ep_io_info_t */
#define EP_MSG_TEST_HANG 0x0Cu    /* -> empty; test builds only: stop feeding the watchdog (no reply) */
#define EP_MSG_SET_BAUD 0x0Du     /* -> ep_set_baud_t; <- empty at the old rate, then the board switches (see below) */
#define EP_MSG_ERROR 0x7Fu        /* never a request; reply type EP_MSG_ERROR | EP_REPLY_FLAG */

/* Status codes carried by an error reply (ep_error_t.status). */
#define EP_ST_OK 0
#define EP_ST_CRC 1            /* CRC mismatch */
#define EP_ST_COBS 2           /* invalid COBS encoding */
#define EP_ST_TOO_LONG 3       /* frame longer than EP_MAX_ENCODED (dropped up to the next 0x00) */
#define EP_ST_TRUNCATED 4      /* body shorter than its header + len + crc, or longer */
#define EP_ST_VERSION 5        /* protocol version not EP_PROTOCOL_VERSION */
#define EP_ST_UNKNOWN_TYPE 6   /* no such request type */
#define EP_ST_BAD_LENGTH 7     /* payload length wrong for the request type */
#define EP_ST_SEQUENCE 8       /* duplicate or older seq (detail: the next expected seq) */
#define EP_ST_NO_LOAD 9        /* LOAD_CHUNK / LOAD_END without LOAD_BEGIN */
#define EP_ST_LOAD_ORDER 10    /* LOAD_CHUNK offset != bytes received so far (detail: expected offset) */
#define EP_ST_MODEL_TOO_BIG 11 /* LOAD_BEGIN size > max model bytes (detail: the limit) */
#define EP_ST_LOAD_SIZE 12     /* LOAD_END with bytes received != announced size, or chunk overruns it */
#define EP_ST_HASH 13          /* SHA-256 of received bytes != announced */
#define EP_ST_RUNTIME 14       /* the runtime refused (detail: ep_rt_status, negative) */
#define EP_ST_NO_MODEL 15      /* no model loaded and validated */
#define EP_ST_BAD_ARG 16       /* argument out of range (index, n, steps, ...) */
#define EP_ST_NO_RUNTIME 17    /* firmware built without the inference runtime */

/* Core identifiers (ep_hello_t.core). */
#define EP_CORE_M0 0u
#define EP_CORE_M0PLUS 1u
#define EP_CORE_M3 3u
#define EP_CORE_M4 4u
#define EP_CORE_M7 7u
#define EP_CORE_M33 33u

/* Counter kinds (ep_hello_t.counter, ep_infer_reply_t.counter). */
#define EP_COUNTER_DWT 0u    /* core clock cycles from DWT CYCCNT */
#define EP_COUNTER_ICOUNT 1u /* instructions under QEMU -icount shift=0 (SysTick ticks x counter_scale_milli / 1000);
                              * also what the STM32 port falls back to when DWT CYCCNT does not count (QEMU) */

/* Reset reasons (ep_hello_t.reset_reason). */
#define EP_RESET_POWER_ON 0u
#define EP_RESET_SOFTWARE 1u
#define EP_RESET_WATCHDOG 2u
#define EP_RESET_OTHER 3u

/* Power sensors (ep_power_t.sensor). */
#define EP_POWER_ABSENT 0u
#define EP_POWER_INA219 1u
#define EP_POWER_INA226 2u

/* Payload structs. Every field is naturally aligned and the sizes are asserted below. */
typedef struct {
  uint16_t protocol;      /* EP_PROTOCOL_VERSION */
  uint8_t core;           /* EP_CORE_* */
  uint8_t counter;        /* EP_COUNTER_* */
  uint32_t clock_hz;      /* core clock (QEMU: the emulated SysTick clock) */
  uint32_t counter_scale_milli; /* 1000 x counts per counter tick (the resolution of a count): 1000 for DWT;
                                 * icount: 1000 x instructions per SysTick tick (mps2 40000, AN505 50000,
                                 * microbit 62500) */
  uint32_t arena_bytes;   /* tensor arena size */
  uint32_t max_model;     /* largest model LOAD_BEGIN accepts (bytes) */
  uint32_t max_payload;   /* EP_MAX_PAYLOAD the firmware was built with */
  uint8_t reset_reason;   /* EP_RESET_* */
  uint8_t has_runtime;    /* 0: built without firmware/runtime (LOAD_END/INFER answer EP_ST_NO_RUNTIME) */
  uint8_t baked_model;    /* 1: deploy build with a model compiled in (already initialised) */
  uint8_t reserved;
  char build_id[EP_BUILD_ID_LEN]; /* "<git hash>-<config hash>" */
  char board[EP_BOARD_LEN];       /* e.g. "mps2-an386" */
  uint8_t model_sha256[32];       /* SHA-256 of the loaded and validated model; zeros when none is (and for a
                                   * baked model): a host skips sending a model the board already holds */
} ep_hello_t;

typedef struct {
  uint32_t size;
  uint8_t sha256[32];
} ep_load_begin_t;

typedef struct {
  uint32_t offset; /* followed by the chunk bytes (1..EP_MAX_CHUNK) */
} ep_load_chunk_t;

typedef struct {
  uint32_t arena_used;
  uint32_t macs; /* per invoke, saturated at 2^32-1 */
  uint8_t num_inputs;
  uint8_t num_outputs;
  uint16_t reserved;
} ep_load_reply_t;

typedef struct {
  uint16_t steps;       /* 1 = plain mode */
  uint8_t stream_input; /* input index fed one step at a time */
  uint8_t npairs;       /* followed by npairs x {u8 output_index, u8 input_index} */
} ep_set_sequence_t;

typedef struct {
  uint8_t index;
  uint8_t reserved[3];
  uint32_t offset; /* followed by the input bytes */
} ep_set_input_t;

typedef struct {
  uint16_t n; /* 1..EP_MAX_RUNS */
  uint16_t reserved;
} ep_infer_t;

typedef struct {
  uint16_t n;
  uint8_t counter; /* EP_COUNTER_* */
  uint8_t num_outputs;
  uint32_t min;
  uint32_t median; /* lower median for even n */
} ep_infer_reply_t; /* followed by n x u32 count */

typedef struct {
  uint8_t index;
  uint8_t reserved;
  uint16_t max_len; /* <= EP_MAX_PAYLOAD - sizeof(ep_output_reply_t) */
  uint32_t offset;
} ep_get_output_t;

typedef struct {
  uint32_t total; /* output tensor size in bytes */
  uint32_t offset;
} ep_output_reply_t; /* followed by min(max_len, total - offset) bytes */

typedef struct {
  uint8_t sensor; /* EP_POWER_*; the other fields are 0 when absent */
  uint8_t reserved[3];
  uint32_t bus_uv;
  int32_t current_ua;
  uint32_t power_uw;
} ep_power_t;

typedef struct {
  uint8_t is_output;
  uint8_t index;
  uint16_t reserved;
} ep_io_info_req_t;

typedef struct {
  uint32_t bytes;
  float scale;
  int32_t zero_point;
  uint8_t dtype; /* TFLite TensorType */
  uint8_t rank;
  uint16_t reserved;
  int32_t dims[EP_MAX_DIMS];
} ep_io_info_t;

typedef struct {
  uint32_t rate; /* baud */
} ep_set_baud_t;

typedef struct {
  uint8_t request_type; /* type of the refused request (0 if the frame could not be parsed) */
  uint8_t reserved;
  int16_t status;       /* EP_ST_* */
  int32_t detail;       /* status-specific: expected seq/offset, limit, or runtime status */
} ep_error_t;

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(ep_hello_t) == 108, "ep_hello_t layout");
_Static_assert(sizeof(ep_load_begin_t) == 36, "ep_load_begin_t layout");
_Static_assert(sizeof(ep_load_chunk_t) == 4, "ep_load_chunk_t layout");
_Static_assert(sizeof(ep_load_reply_t) == 12, "ep_load_reply_t layout");
_Static_assert(sizeof(ep_set_sequence_t) == 4, "ep_set_sequence_t layout");
_Static_assert(sizeof(ep_set_input_t) == 8, "ep_set_input_t layout");
_Static_assert(sizeof(ep_infer_t) == 4, "ep_infer_t layout");
_Static_assert(sizeof(ep_infer_reply_t) == 12, "ep_infer_reply_t layout");
_Static_assert(sizeof(ep_get_output_t) == 8, "ep_get_output_t layout");
_Static_assert(sizeof(ep_output_reply_t) == 8, "ep_output_reply_t layout");
_Static_assert(sizeof(ep_power_t) == 16, "ep_power_t layout");
_Static_assert(sizeof(ep_io_info_req_t) == 4, "ep_io_info_req_t layout");
_Static_assert(sizeof(ep_io_info_t) == 40, "ep_io_info_t layout");
_Static_assert(sizeof(ep_set_baud_t) == 4, "ep_set_baud_t layout");
_Static_assert(sizeof(ep_error_t) == 8, "ep_error_t layout");
#endif

#endif /* EP_PROTOCOL_H */
