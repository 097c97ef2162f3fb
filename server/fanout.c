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
 *
 * Reading ~25 attributes per member through getattr was most of what this costs beyond the send() itself (a
 * perf profile of the live bench), so the attributes are read from each object's own __dict__, falling back to
 * getattr for what is not there (class defaults): the same values, because only exact types are taken — the
 * protocol class and Twisted's TCP classes given to configure(), which server.fanout's gate checks define none
 * of these names as data descriptors (which getattr would ask before the instance's __dict__). The protocol
 * is read from DirectSocket's slot directly. Anything unexpected (another type, a missing attribute, an
 * error) hands the member back.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>

/* configure() */
static PyObject *transport_types;     /* a tuple of Twisted's TCP connection classes, taken exactly */
static PyTypeObject *protocol_type;   /* FastWebSocketProtocol, exactly */
static PyTypeObject *direct_type;     /* DirectSocket, exactly */
static Py_ssize_t direct_protocol_offset = -1;  /* where DirectSocket's _protocol slot is */
static long state_open = -1;          /* WebSocketProtocol.STATE_OPEN */

static PyObject *s_member_id, *s_direct_ready, *s_state, *s_muted, *s_per_message_compress, *s_send_queue,
    *s_transport, *s_tls, *s_connected, *s_disconnecting, *s_write_disconnected, *s_temp_data_buffer,
    *s_data_buffer, *s_offset, *s_producer, *s_streaming_producer, *s_producer_paused, *s_socket,
    *s_traffic_stats, *s_outgoing_octets, *s_factory, *s_log_octets, *s_log_tx_octets;

/* An object and its own __dict__ (a new reference), read together. */
typedef struct {
    PyObject *object;
    PyObject *attributes;
} Owner;

static int
owner_of(PyObject *object, Owner *owner)
{
    owner->object = object;
    owner->attributes = PyObject_GenericGetDict(object, NULL);
    if (owner->attributes == NULL || !PyDict_Check(owner->attributes)) {
        Py_CLEAR(owner->attributes);
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* The attribute `name`: the object's own if its __dict__ has it, else getattr's (a class default). A new
 * reference, or NULL with no error set (missing, or failed: the member takes Python's path then). */
static PyObject *
attribute_of(Owner *owner, PyObject *name)
{
    PyObject *value = PyDict_GetItemWithError(owner->attributes, name);
    if (value != NULL) {
        Py_INCREF(value);
        return value;
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    /* Not the object's own: its class's plain value as is (the __dict__ was just asked; getattr would ask it
     * again), anything with a __get__ through getattr. */
    value = _PyType_Lookup(Py_TYPE(owner->object), name);
    if (value != NULL && Py_TYPE(value)->tp_descr_get == NULL) {
        Py_INCREF(value);
        return value;
    }
    value = PyObject_GetAttr(owner->object, name);
    if (value == NULL) {
        PyErr_Clear();
    }
    return value;
}

/* 1 (truthy), 0 (falsy) or -1 (missing or failed). */
static int
truth_of(Owner *owner, PyObject *name)
{
    PyObject *value = attribute_of(owner, name);
    if (value == NULL) {
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
length_of(Owner *owner, PyObject *name)
{
    PyObject *value = attribute_of(owner, name);
    if (value == NULL) {
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
is_none(Owner *owner, PyObject *name)
{
    PyObject *value = attribute_of(owner, name);
    if (value == NULL) {
        return -1;
    }
    int none = value == Py_None;
    Py_DECREF(value);
    return none;
}

static Py_ssize_t
integer_of(Owner *owner, PyObject *name)
{
    PyObject *value = attribute_of(owner, name);
    if (value == NULL) {
        return -1;
    }
    Py_ssize_t integer = PyLong_Check(value) ? PyLong_AsSsize_t(value) : -1;
    Py_DECREF(value);
    if (integer == -1 && PyErr_Occurred()) {
        PyErr_Clear();
    }
    return integer;
}

static int
exact_type_in(PyObject *object, PyObject *types)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(types); i++) {
        if (Py_TYPE(object) == (PyTypeObject *)PyTuple_GET_ITEM(types, i)) {
            return 1;
        }
    }
    return 0;
}

/* Whether the transport can take the frame now (server/write_now.py's can_write_now); its descriptor in *fd. */
static int
transport_takes_now(Owner *transport, int *fd)
{
    if (truth_of(transport, s_tls) != 0 || truth_of(transport, s_connected) != 1
        || truth_of(transport, s_disconnecting) != 0 || truth_of(transport, s_write_disconnected) != 0
        || length_of(transport, s_temp_data_buffer) != 0) {
        return 0;
    }
    Py_ssize_t buffered = length_of(transport, s_data_buffer);
    Py_ssize_t offset = integer_of(transport, s_offset);
    if (buffered < 0 || offset < 0 || buffered > offset) {
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
    PyObject *sock = attribute_of(transport, s_socket);
    if (sock == NULL) {
        return 0;
    }
    *fd = PyObject_AsFileDescriptor(sock);  /* -1 once closed: an error, so Python's path decides */
    Py_DECREF(sock);
    if (*fd < 0) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* Whether a protocol logs its octets (Autobahn's logOctets): its own value if it set one, else its factory's,
 * which FactoryOption would read with a Python call per member; so once per factory in a call. */
typedef struct {
    PyObject *factory; /* referenced until the call ends */
    int logs;
} LogOctetsCache;

static int
logs_octets(Owner *protocol, LogOctetsCache *cache)
{
    PyObject *own = PyDict_GetItemWithError(protocol->attributes, s_log_octets);
    if (own != NULL) {
        int truth = PyObject_IsTrue(own);
        if (truth < 0) {
            PyErr_Clear();
        }
        return truth;
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    PyObject *factory = attribute_of(protocol, s_factory);
    if (factory == NULL) {
        return -1;
    }
    if (factory != cache->factory) {
        PyObject *value = PyObject_GetAttr(protocol->object, s_log_octets);
        cache->logs = value == NULL ? -1 : PyObject_IsTrue(value);
        Py_XDECREF(value);
        PyErr_Clear();
        Py_XSETREF(cache->factory, factory);  /* takes the reference */
        return cache->logs;
    }
    Py_DECREF(factory);
    return cache->logs;
}

/* Whether the protocol writes a prepared frame now (DirectSocket.send_prepared, FastWebSocketProtocol.send_now):
 * open, not muted, no compression negotiated, nothing in Autobahn's own send queue. */
static int
protocol_takes_now(Owner *protocol, LogOctetsCache *cache, int *logs)
{
    if (integer_of(protocol, s_state) != state_open || truth_of(protocol, s_muted) != 0
        || is_none(protocol, s_per_message_compress) != 1) {
        return 0;
    }
    PyObject *queue = PyDict_GetItemWithError(protocol->attributes, s_send_queue);
    if (queue == NULL && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (queue != NULL && PyObject_IsTrue(queue) != 0) {
        PyErr_Clear();
        return 0;
    }
    *logs = logs_octets(protocol, cache);
    return *logs >= 0;
}

/* The frame's bookkeeping, as Autobahn's sendData keeps it for an open connection. An error here is reported
 * as unraisable (the frame is sent; the other members must still get theirs). */
static void
account(Owner *protocol, PyObject *frame, Py_ssize_t size, int logs)
{
    PyObject *stats = attribute_of(protocol, s_traffic_stats);
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
    } else {
        PyErr_SetString(PyExc_AttributeError, "trafficStats");
    }
    if (!PyErr_Occurred() && logs) {
        PyObject *logged = PyObject_CallMethodObjArgs(protocol->object, s_log_tx_octets, frame, Py_False, NULL);
        Py_XDECREF(logged);
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(protocol->object);
    }
}

typedef struct {
    Owner protocol;      /* the protocol referenced, its __dict__ too */
    PyObject *transport; /* referenced */
    int fd;
    int logs;
    Py_ssize_t sent;
} Recipient;

/* The protocol behind a member's DirectSocket, if the member takes broadcasts now (a new reference). */
static PyObject *
protocol_of(PyObject *member)
{
    PyObject *direct = PyObject_GetAttr(member, s_direct_ready);
    if (direct == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *protocol = NULL;
    if (Py_TYPE(direct) == direct_type) {
        protocol = *(PyObject **)((char *)direct + direct_protocol_offset);
        Py_XINCREF(protocol);
    }
    Py_DECREF(direct);
    if (protocol != NULL && Py_TYPE(protocol) != protocol_type) {
        Py_CLEAR(protocol);
    }
    return protocol;
}

/* Whether the member's socket takes the frame now; if so *recipient holds what sending and accounting need. */
static int
recipient_of(PyObject *member, LogOctetsCache *cache, Recipient *recipient)
{
    PyObject *protocol = protocol_of(member);
    if (protocol == NULL) {
        return 0;
    }
    Owner protocol_owner, transport_owner;
    int logs = 0, fd = -1;
    if (!owner_of(protocol, &protocol_owner)) {
        Py_DECREF(protocol);
        return 0;
    }
    PyObject *transport = NULL;
    if (protocol_takes_now(&protocol_owner, cache, &logs)) {
        transport = attribute_of(&protocol_owner, s_transport);
    }
    int takes = 0;
    if (transport != NULL && exact_type_in(transport, transport_types) && owner_of(transport, &transport_owner)) {
        takes = transport_takes_now(&transport_owner, &fd);
        Py_DECREF(transport_owner.attributes);
    }
    if (!takes) {
        Py_XDECREF(transport);
        Py_DECREF(protocol_owner.attributes);
        Py_DECREF(protocol);
        return 0;
    }
    *recipient = (Recipient){protocol_owner, transport, fd, logs, 0};
    return 1;
}

static void
release(Recipient *recipient)
{
    Py_CLEAR(recipient->protocol.attributes);
    Py_CLEAR(recipient->protocol.object);
    Py_CLEAR(recipient->transport);
}

static PyObject *
send_to_all(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "send_to_all(members: list, skip: object, frame: bytes)");
        return NULL;
    }
    if (transport_types == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "server._fanout.configure() was not called");
        return NULL;
    }
    PyObject *skip = args[1], *frame = args[2];
    const char *data = PyBytes_AS_STRING(frame);
    Py_ssize_t size = PyBytes_GET_SIZE(frame);
    /* A snapshot: the getattrs below may run Python code (descriptors, __getattr__), which must not be able to
     * change the list under this loop. */
    PyObject *members = PyList_AsTuple(args[0]);
    if (members == NULL) {
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(members);

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
        PyObject *member = PyTuple_GET_ITEM(members, i);
        if (skip != Py_None) {
            PyObject *member_id = PyObject_GetAttr(member, s_member_id);
            int skipped = member_id != NULL && PyObject_RichCompareBool(member_id, skip, Py_EQ) == 1;
            Py_XDECREF(member_id);
            PyErr_Clear();
            if (skipped) {
                continue;
            }
        }
        if (recipient_of(member, &log_octets, &recipients[taken])) {
            /* Counted (and logged) now, while the protocol is at hand; the frame is its transport's from here
             * on, whatever send() takes (the rest goes to transport.write), so Autobahn would count it too. */
            account(&recipients[taken].protocol, frame, size, recipients[taken].logs);
            taken++;
        } else if (PyList_Append(left, member) < 0) {
            goto failed;
        }
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
        if (recipient->sent < size) {
            PyObject *item = Py_BuildValue("(On)", recipient->transport, recipient->sent);
            if (item == NULL || PyList_Append(unfinished, item) < 0) {
                /* Out of memory: the rest of this frame cannot be handed on; report it, and go on. */
                PyErr_WriteUnraisable(recipient->transport);
            }
            Py_XDECREF(item);
        }
        release(recipient);
    }
    PyMem_Free(recipients);
    Py_XDECREF(log_octets.factory);
    Py_DECREF(members);
    return Py_BuildValue("(NN)", left, unfinished);

failed:
    for (Py_ssize_t i = 0; i < taken; i++) {
        release(&recipients[i]);
    }
    PyMem_Free(recipients);
    Py_XDECREF(log_octets.factory);
    Py_DECREF(members);
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
    PyObject *transports, *protocol, *direct;
    long open_state;
    if (!PyArg_ParseTuple(args, "O!O!O!l", &PyTuple_Type, &transports, &PyType_Type, &protocol, &PyType_Type,
                          &direct, &open_state)) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(transports); i++) {
        if (!PyType_Check(PyTuple_GET_ITEM(transports, i))) {
            PyErr_SetString(PyExc_TypeError, "configure(): the transports are classes");
            return NULL;
        }
    }
    PyObject *slot = PyObject_GetAttrString(direct, "_protocol");
    if (slot == NULL) {
        return NULL;
    }
    int is_slot = Py_IS_TYPE(slot, &PyMemberDescr_Type)
        && ((PyMemberDescrObject *)slot)->d_member->type == T_OBJECT_EX;
    Py_ssize_t offset = is_slot ? ((PyMemberDescrObject *)slot)->d_member->offset : -1;
    Py_DECREF(slot);
    if (!is_slot) {
        PyErr_SetString(PyExc_TypeError, "configure(): DirectSocket._protocol is not an object slot");
        return NULL;
    }
    Py_INCREF(transports);
    Py_XSETREF(transport_types, transports);
    Py_INCREF(protocol);
    Py_XSETREF(protocol_type, (PyTypeObject *)protocol);
    Py_INCREF(direct);
    Py_XSETREF(direct_type, (PyTypeObject *)direct);
    direct_protocol_offset = offset;
    state_open = open_state;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"send_to_all", (PyCFunction)(void (*)(void))send_to_all, METH_FASTCALL,
     "send_to_all(members, skip, frame) -> (left, unfinished): write `frame` now to every member whose socket "
     "takes it (server/fanout.py)."},
    {"configure", configure, METH_VARARGS,
     "configure(transport_types, protocol_type, direct_socket_type, state_open): the exact classes taken "
     "(Twisted's TCP connections, FastWebSocketProtocol, DirectSocket) and Autobahn's open state."},
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
    INTERN(s_state, "state");
    INTERN(s_muted, "muted");
    INTERN(s_per_message_compress, "_perMessageCompress");
    INTERN(s_send_queue, "_send_queue");
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
