// The wire between the simulated Pico and whatever sits on its UART0: in tests and
// in the demo, the SIM7020E simulator.

export interface UartPeer {
  /** Bytes the Pico transmits on UART0 TX. */
  receiveFromPico(data: Uint8Array): void;
  /** Registers the sink for bytes the peer sends to the Pico's UART0 RX. */
  onTransmit(listener: (data: Uint8Array) => void): void;
  /** A Pico GPIO output changed level (the modem watches GP14, its PWRKEY). */
  setPin(pin: number, value: number): void;
  /** The whole board lost power (power-cut tests): the modem turns off too. */
  powerCut(): void;
}
