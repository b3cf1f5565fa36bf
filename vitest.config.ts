import { defineConfig } from 'vitest/config';

// Suites start real daemons, MicroPython interpreters and libcoap processes, so
// each test gets generous time and files run two at a time on the 2-core CI machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
  },
});
