// The harness's vocabulary: what starts and stops the system under test and what a run leaves behind.
//
// Terminology (these words mean one thing everywhere in the harness, the scenarios and their results):
// - process: a child the harness starts and owns (a private database server, the HTTP server, a worker, a TCP
//   proxy's peer); started until ready, stopped gracefully with a deadline, killed if it outlives its parent.
// - ready: a process has said it can serve (the database answers a query; the server's /healthz answers 200;
//   the worker printed `worker started`), not merely that it was spawned.
// - system under test: one database, one server, N workers, assembled by systemUnderTest.ts from their specs.
// - backend: what runs the system and what a fault acts on: local (this process's children) or docker
//   (Compose services). Faults are written against FaultBackend, whatever runs them.
// - fault: something done to the system on the nemesis's own timer (kill, pause, restart, cut or delay a
//   connection, stall the offset allocator), then healed.
// - history: the recorded publish attempts of a chaos case with their outcomes and times.
// - outcome: one attempt's result: ok (2xx: committed), fail (definitely not published: refused before
//   sending, a 4xx, a 503), unknown (a timeout, a reset, a 504: may or may not have been published).
// - verdict: the checker's result (VerdictKind in bench/counterCheck.ts): valid, invalid (with what was lost
//   or duplicated), or unknown (the evidence could not decide).
export type { ServiceRole, FaultBackend } from './faults/backend.ts';
