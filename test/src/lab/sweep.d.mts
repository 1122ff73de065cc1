// Types for sweep.mjs (plain JavaScript so the watchdog can run it without a TypeScript loader).
export declare const NETNS_DIR: string;
/** "ct" + 6 lowercase hex digits. */
export declare const PREFIX_RE: RegExp;
export declare function deletionOrder(prefix: string, names: readonly string[]): string[];
export declare function ownedNamespaces(prefix: string): string[];
export declare function pidsIn(ns: string): number[];
/** True while the process exists and is not a zombie. */
export declare function isAlive(pid: number): boolean;
export declare function sleepSync(ms: number): void;
/** Kills what runs in the lab's namespaces, deletes them; returns problems (empty = clean). */
export declare function sweepSync(prefix: string, opts?: { waitMs?: number }): string[];
