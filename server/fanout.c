/* server._fanout: write one broadcast frame to many WebSockets in one call (server/fanout.py).
 *
 * A broadcast to N local sockets was N trips through five Python functions (live.hub → the consumer's
 * deliver_now → DirectSocket.send_prepared → send_now → server.write_now), about half the interpreter's time
 * in a round at N = 1,000 (docs/benchmark.md). This module makes the same checks and the same send() for
 * every member in C, and hands back to Python whatever is not the plain case, so that Python's path decides
 * it exactly as before:
 *
 *   - a member whose member_id is `skip` is done (the sender is not sent its own broadcast);
 *   - a member without a `direct_ready` DirectSocket, or whose protocol or transport does not qualify, is
 *     returned in `left` (the caller delivers it as before: the consumer's deliver_now / on_group_message);
 *   - a qualifying one is sent the frame with one send(); the checks are server/write_now.py's can_write_now
 *     and FastWebSocketProtocol.send_now's (open, not muted, no compression, nothing queued by Autobahn, a
 *     plain TCP connection with nothing buffered and no back-pressure);
 *   - a send that did not take the whole frame (a partial write, EAGAIN, or an error such as a reset
 *     connection) is returned in `unfinished` as (transport, bytes sent): the caller hands the rest to
 *     transport.write, which sends it in order or meets the error and closes the connection, as Twisted does.
 *
 * Each sent frame is counted in the protocol's trafficStats, and logged when the protocol logs octets, as
 * Autobahn's sendData does. The sends themselves run without the GIL, in one stretch: only the reactor's
 * thread touches these sockets, and every protocol and transport is referenced until the sends are done.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>

static PyObject *connection_type;  /* twisted.internet.tcp.Connection (configure) */
static long state_open = -1;       /* WebSocketProtocol.STATE_OPEN (configure) */

static PyObject *s_member_id, *s_direct_ready, *s_protocol, *s_state, *s_muted, *s_per_message_compress,
    *s_send_queue, *s_dict, *s_transport, *s_tls, *s_connected, *s_disconnecting, *s_write_disconnected,
    *s_temp_data_buffer, *s_data_buffer, *s_offset, *s_producer, *s_streaming_producer, *s_producer_paused,
    *s_socket, *s_traffic_stats, *s_outgoing_octets, *s_factory, *s_log_octets, *s_log_tx_octets;

/* A getattr that answers 1 (truthy), 0 (falsy) or -1 (missing or failed; the error is cleared: the member
 * then takes Python's path, which raises and logs it if it is real). */
static int
truth_of(PyObject *owner, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(owner, name);
    if (value == NULL) {
        PyErr_Clear();
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    if (truth < 0) {
        PyErr_Clear();
    }
    return truth;
}

static Py_ssize_t
length_of(PyObject *owner, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(owner, name);
    if (value == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t length = PyObject_Length(value);
    Py_DECREF(value);
    if (length < 0) {
        PyErr_Clear();
    }
    return length;
}

static int
is_none(PyObject *owner, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(owner, name);
    if (value == NULL) {
        PyErr_Clear();
        return -1;
    }
    int none = value == Py_None;
    Py_DECREF(value);
    return none;
}

/* Whether the protocol's transport can take the frame now (can_write_now); its socket's descriptor in *fd. */
static int
transport_takes_now(PyObject *transport, int *fd)
{
    if (!PyObject_TypeCheck(transport, (PyTypeObject *)connection_type)) {
        return 0;
    }
    if (truth_of(transport, s_tls) != 0 || truth_of(transport, s_connected) != 1
        || truth_of(transport, s_disconnecting) != 0 || truth_of(transport, s_write_disconnected) != 0
        || length_of(transport, s_temp_data_buffer) != 0) {
        return 0;
    }
    Py_ssize_t buffered = length_of(transport, s_data_buffer);
    if (buffered < 0) {
        return 0;
    }
    PyObject *offset_object = PyObject_GetAttr(transport, s_offset);
    if (offset_object == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(offset_object);
    Py_DECREF(offset_object);
    if (offset == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (buffered > offset) {
        return 0;
    }
    int no_producer = is_none(transport, s_producer);
    if (no_producer < 0) {
        return 0;
    }
    if (!no_producer
        && (truth_of(transport, s_streaming_producer) != 1 || truth_of(transport, s_producer_paused) != 0)) {
        return 0;
    }
    PyObject *sock = PyObject_GetAttr(transport, s_socket);
    if (sock == NULL) {
        PyErr_Clear();
        return 0;
    }
    *fd = PyObject_AsFileDescriptor(sock);
    Py_DECREF(sock);
    if (*fd < 0) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* Whether the protocol writes a prepared frame now (send_prepared, send_now): open, not muted, no compression
 * negotiated, nothing in Autobahn's own send queue. */
/* Whether a protocol logs its octets (Autobahn's logOctets): its own value if it set one, else its factory's, which
 * FastWebSocketProtocol's FactoryOption would read (a Python call per member); one read per factory and call. */
typedef struct {
    PyObject *factory; /* borrowed: the factory of the last protocol that had none of its own */
    int logs;
} LogOctetsCache;

static int
logs_octets(PyObject *protocol, PyObject *attributes, LogOctetsCache *cache)
{
    PyObject *own = PyDict_GetItemWithError(attributes, s_log_octets);
    if (own != NULL) {
        return PyObject_IsTrue(own);
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *factory = PyObject_GetAttr(protocol, s_factory);
    if (factory == NULL) {
        return -1;
    }
    if (factory != cache->factory) {
        cache->logs = truth_of(protocol, s_log_octets);
        cache->factory = factory;
    }
    Py_DECREF(factory);  /* the protocols, referenced until the call ends, keep it alive */
    return cache->logs;
}

static int
protocol_takes_now(PyObject *protocol, LogOctetsCache *cache, int *logs)
{
    PyObject *state = PyObject_GetAttr(protocol, s_state);
    if (state == NULL) {
        PyErr_Clear();
        return 0;
    }
    long value = PyLong_AsLong(state);
    Py_DECREF(state);
    if (value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (value != state_open || truth_of(protocol, s_muted) != 0 || is_none(protocol, s_per_message_compress) != 1) {
        return 0;
    }
    PyObject *attributes = PyObject_GetAttr(protocol, s_dict);
    if (attributes == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (!PyDict_Check(attributes)) {
        Py_DECREF(attributes);
        return 0;
    }
    PyObject *queue = PyDict_GetItemWithError(attributes, s_send_queue);
    int queued = queue != NULL && PyObject_IsTrue(queue) != 0;
    *logs = queued || PyErr_Occurred() ? -1 : logs_octets(protocol, attributes, cache);
    Py_DECREF(attributes);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return !queued && *logs >= 0;
}

/* The frame's bookkeeping, as Autobahn's sendData keeps it for an open connection. An error here is reported
 * as unraisable (the frame is sent; the other members must still get theirs). */
static void
account(PyObject *protocol, PyObject *frame, Py_ssize_t size, int logs)
{
    PyObject *stats = PyObject_GetAttr(protocol, s_traffic_stats);
    if (stats != NULL) {
        PyObject *octets = PyObject_GetAttr(stats, s_outgoing_octets);
        if (octets != NULL) {
            PyObject *size_object = PyLong_FromSsize_t(size);
            PyObject *sum = size_object == NULL ? NULL : PyNumber_Add(octets, size_object);
            if (sum != NULL) {
                PyObject_SetAttr(stats, s_outgoing_octets, sum);
                Py_DECREF(sum);
            }
            Py_XDECREF(size_object);
            Py_DECREF(octets);
        }
        Py_DECREF(stats);
    }
    if (!PyErr_Occurred()) {
        if (logs) {
            PyObject *logged = PyObject_CallMethodObjArgs(protocol, s_log_tx_octets, frame, Py_False, NULL);
            Py_XDECREF(logged);
        }
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(protocol);
    }
}

typedef struct {
    PyObject *protocol;  /* referenced */
    PyObject *transport; /* referenced */
    int fd;
    int logs;
    Py_ssize_t sent;
} Recipient;

static PyObject *
send_to_all(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "send_to_all(members: list, skip: object, frame: bytes)");
        return NULL;
    }
    if (connection_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "server._fanout.configure() was not called");
        return NULL;
    }
    PyObject *members = args[0], *skip = args[1], *frame = args[2];
    const char *data = PyBytes_AS_STRING(frame);
    Py_ssize_t size = PyBytes_GET_SIZE(frame);
    Py_ssize_t count = PyList_GET_SIZE(members);

    PyObject *left = PyList_New(0);
    PyObject *unfinished = PyList_New(0);
    Recipient *recipients = PyMem_Calloc(count ? count : 1, sizeof(Recipient));
    Py_ssize_t taken = 0;
    LogOctetsCache log_octets = {NULL, 0};
    if (left == NULL || unfinished == NULL || recipients == NULL) {
        goto failed;
    }
    /* Members whose socket takes the frame now; the others to `left`, in their order. */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *member = PyList_GET_ITEM(members, i);
        if (skip != Py_None) {
            PyObject *member_id = PyObject_GetAttr(member, s_member_id);
            int skipped = member_id != NULL && PyObject_RichCompareBool(member_id, skip, Py_EQ) == 1;
            Py_XDECREF(member_id);
            PyErr_Clear();
            if (skipped) {
                continue;
            }
        }
        PyObject *direct = PyObject_GetAttr(member, s_direct_ready);
        PyObject *protocol = NULL, *transport = NULL;
        int fd = -1, logs = 0;
        if (direct == NULL) {
            PyErr_Clear();
        } else if (direct != Py_None) {
            protocol = PyObject_GetAttr(direct, s_protocol);
            if (protocol == NULL) {
                PyErr_Clear();
            } else if (protocol_takes_now(protocol, &log_octets, &logs)) {
                transport = PyObject_GetAttr(protocol, s_transport);
                if (transport == NULL) {
                    PyErr_Clear();
                } else if (!transport_takes_now(transport, &fd)) {
                    Py_CLEAR(transport);
                }
            }
        }
        Py_XDECREF(direct);
        if (transport == NULL) {
            Py_XDECREF(protocol);
            if (PyList_Append(left, member) < 0) {
                goto failed;
            }
            continue;
        }
        recipients[taken++] = (Recipient){protocol, transport, fd, logs, 0};
    }

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < taken; i++) {
        ssize_t sent;
        do {
            sent = send(recipients[i].fd, data, (size_t)size, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (sent < 0 && errno == EINTR);
        /* Any error, "try again" included: nothing sent here; transport.write takes the whole frame. */
        recipients[i].sent = sent < 0 ? 0 : sent;
    }
    Py_END_ALLOW_THREADS

    for (Py_ssize_t i = 0; i < taken; i++) {
        Recipient *recipient = &recipients[i];
        account(recipient->protocol, frame, size, recipient->logs);
        if (recipient->sent < size) {
            PyObject *item = Py_BuildValue("(On)", recipient->transport, recipient->sent);
            if (item == NULL || PyList_Append(unfinished, item) < 0) {
                /* Out of memory: the rest of this frame cannot be handed on; report it, and go on. */
                PyErr_WriteUnraisable(recipient->transport);
            }
            Py_XDECREF(item);
        }
        Py_CLEAR(recipient->protocol);
        Py_CLEAR(recipient->transport);
    }
    PyMem_Free(recipients);
    return Py_BuildValue("(NN)", left, unfinished);

failed:
    for (Py_ssize_t i = 0; i < taken; i++) {
        Py_XDECREF(recipients[i].protocol);
        Py_XDECREF(recipients[i].transport);
    }
    PyMem_Free(recipients);
    Py_XDECREF(left);
    Py_XDECREF(unfinished);
    if (!PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    return NULL;
}

static PyObject *
configure(PyObject *module, PyObject *args)
{
    PyObject *type;
    long open_state;
    if (!PyArg_ParseTuple(args, "O!l", &PyType_Type, &type, &open_state)) {
        return NULL;
    }
    Py_INCREF(type);
    Py_XSETREF(connection_type, type);
    state_open = open_state;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"send_to_all", (PyCFunction)(void (*)(void))send_to_all, METH_FASTCALL,
     "send_to_all(members, skip, frame) -> (left, unfinished): write `frame` now to every member whose socket "
     "takes it (server/fanout.py)."},
    {"configure", configure, METH_VARARGS,
     "configure(connection_type, state_open): Twisted's TCP connection class and Autobahn's open state."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "server._fanout", "A broadcast frame written to many sockets in one call.", -1, methods,
};

#define INTERN(variable, text)                                                                                \
    if ((variable = PyUnicode_InternFromString(text)) == NULL) {                                              \
        return NULL;                                                                                          \
    }

PyMODINIT_FUNC
PyInit__fanout(void)
{
    INTERN(s_member_id, "member_id");
    INTERN(s_direct_ready, "direct_ready");
    INTERN(s_protocol, "_protocol");
    INTERN(s_state, "state");
    INTERN(s_muted, "muted");
    INTERN(s_per_message_compress, "_perMessageCompress");
    INTERN(s_send_queue, "_send_queue");
    INTERN(s_dict, "__dict__");
    INTERN(s_transport, "transport");
    INTERN(s_tls, "TLS");
    INTERN(s_connected, "connected");
    INTERN(s_disconnecting, "disconnecting");
    INTERN(s_write_disconnected, "_writeDisconnected");
    INTERN(s_temp_data_buffer, "_tempDataBuffer");
    INTERN(s_data_buffer, "dataBuffer");
    INTERN(s_offset, "offset");
    INTERN(s_producer, "producer");
    INTERN(s_streaming_producer, "streamingProducer");
    INTERN(s_producer_paused, "producerPaused");
    INTERN(s_socket, "socket");
    INTERN(s_traffic_stats, "trafficStats");
    INTERN(s_outgoing_octets, "outgoingOctetsWireLevel");
    INTERN(s_factory, "factory");
    INTERN(s_log_octets, "logOctets");
    INTERN(s_log_tx_octets, "logTxOctets");
    return PyModule_Create(&module_definition);
}
