/* errmap_test.c - the error table (server/errmap.h): every rf_err has a
 * row, and each row answers as the three switches it replaced did (http.c's
 * status of a handler's error and its code and text by status, api.c's
 * store errors, pages.c's page for a refused status), so no client, script
 * or person sees a different answer after the reshaping. */
#include "lib/err.h"
#include "server/errmap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

/* http.c's status_of_err before the table. */
static unsigned old_status_of_err(int err)
{
    switch (err) {
    case RF_ERR_LIMIT:
        return 413;
    case RF_ERR_FORMAT:
    case RF_ERR_TRUNCATED:
    case RF_ERR_INVALID:
    case RF_ERR_VERSION:
        return 400;
    case RF_ERR_BUSY:
        return 503;
    case RF_ERR_NOT_FOUND:
        return 404;
    case RF_ERR_AUTH:
    case RF_ERR_SIGNATURE:
        return 401;
    default:
        return 500;
    }
}

/* http.c's answer_error: code and text by status. */
static void old_answer(unsigned status, const char **code, const char **text)
{
    *code = "internal";
    *text = "The server could not handle this request.";
    switch (status) {
    case 400:
        *code = "bad_request";
        *text = "The request is malformed.";
        break;
    case 404:
        *code = "not_found";
        *text = "Nothing here.";
        break;
    case 405:
        *code = "method_not_allowed";
        *text = "This method is not allowed here.";
        break;
    case 413:
        *code = "too_large";
        *text = "The request is too large.";
        break;
    case 503:
        *code = "busy";
        *text = "The server is busy. Try again in a minute.";
        break;
    default:
        break;
    }
}

/* pages.c's rf_pages_refuse map. */
static enum rf_page_err old_refuse_page(unsigned status)
{
    switch (status) {
    case 400:
    case 413:
        return RF_PE_BAD;
    case 404:
        return RF_PE_NOTFOUND;
    case 405:
        return RF_PE_METHOD;
    case 503:
        return RF_PE_BUSY;
    default:
        return RF_PE_SERVER;
    }
}

/* api.c's rf_api_store_error. */
static void old_store(int err, unsigned *status, const char **code, const char **msg)
{
    switch (err) {
    case RF_ERR_NOT_FOUND:
        *status = 404, *code = "not_found", *msg = "no such object";
        return;
    case RF_ERR_EXISTS:
        *status = 409, *code = "exists", *msg = "already exists";
        return;
    case RF_ERR_NOSPACE:
        *status = 503, *code = "no_space", *msg = "the server is out of space; try later";
        return;
    case RF_ERR_BUSY:
        *status = 503, *code = "busy", *msg = "the server is busy; try again shortly";
        return;
    default:
        *status = 503, *code = "store", *msg = "storage error; try again later";
        return;
    }
}

/* The person's page when saving failed (pages_send.c, pages_inbox.c). */
static enum rf_page_err old_save_page(int err)
{
    return err == RF_ERR_BUSY ? RF_PE_BUSY : RF_PE_NOTSAVED;
}

static void every_err_has_a_row(void **state)
{
    (void)state;
    for (int e = 0; e >= RF_ERR_MIN; e--) {
        const struct rf_answer *f = rf_errmap_failure(e), *s = rf_errmap_store(e);
        assert_non_null(f);
        assert_non_null(s);
        assert_true(f->status >= 400 && f->status < 600);
        assert_true(s->status >= 400 && s->status < 600);
        assert_non_null(f->code);
        assert_non_null(f->message);
        assert_non_null(s->code);
        assert_non_null(s->message);
        assert_true(strlen(f->code) > 0 && strlen(s->code) > 0);
    }
    /* not an rf_err: the default rows, never a crash or a NULL */
    assert_int_equal(rf_errmap_failure(RF_ERR_MIN - 1)->status, 500);
    assert_int_equal(rf_errmap_failure(7)->status, 500);
    assert_string_equal(rf_errmap_store(RF_ERR_MIN - 1)->code, "store");
    assert_string_equal(rf_errmap_store(1)->code, "store");
}

static void handler_failures_answer_as_before(void **state)
{
    (void)state;
    for (int e = 0; e >= RF_ERR_MIN - 1; e--) {
        const struct rf_answer *a = rf_errmap_failure(e);
        unsigned status = old_status_of_err(e);
        assert_int_equal(a->status, status);
        /* what answer_error(status) then said, and which page */
        const char *code, *text;
        old_answer(status, &code, &text);
        const struct rf_answer *r = rf_errmap_refusal(a->status);
        assert_string_equal(r->code, code);
        assert_string_equal(r->message, text);
        assert_int_equal(r->page, old_refuse_page(status));
        assert_string_equal(a->code, code);
        assert_int_equal(a->page, old_refuse_page(status));
    }
}

static void refusals_answer_as_before(void **state)
{
    (void)state;
    for (unsigned status = 100; status < 600; status++) {
        const char *code, *text;
        old_answer(status, &code, &text);
        const struct rf_answer *r = rf_errmap_refusal(status);
        assert_string_equal(r->code, code);
        assert_string_equal(r->message, text);
        assert_int_equal(r->page, old_refuse_page(status));
    }
    assert_int_equal(rf_errmap_refusal(405)->status, 405);
    assert_int_equal(rf_errmap_refusal(413)->status, 413);
}

static void store_failures_answer_as_before(void **state)
{
    (void)state;
    for (int e = 1; e >= RF_ERR_MIN - 1; e--) {
        unsigned status;
        const char *code, *msg;
        old_store(e, &status, &code, &msg);
        const struct rf_answer *a = rf_errmap_store(e);
        assert_int_equal(a->status, status);
        assert_string_equal(a->code, code);
        assert_string_equal(a->message, msg);
        assert_int_equal(a->page, old_save_page(e));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_err_has_a_row),
        cmocka_unit_test(handler_failures_answer_as_before),
        cmocka_unit_test(refusals_answer_as_before),
        cmocka_unit_test(store_failures_answer_as_before),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
