// Public entry of the SIM7020E simulator for the test harness, tests and benchmarks.

export { Sim7020Simulator, PWRKEY_PIN, MAX_SEND_BYTES, type PowerState, type Sim7020Options } from './simulator.ts';
export type { ErrorFault, Sim7020Faults } from './faults.ts';
export type { ContextStats, RadioStats, SimStats, TrafficCounters, PowerSavingSettings } from './stats.ts';
export { UDP_HEADER_BYTES, IPV4_HEADER_BYTES } from './stats.ts';
export type { UartPeer } from './uart-peer.ts';
