/** Milliseconds since the epoch; injected wherever time matters so that tests can move it. */
export type Clock = () => number
