// Process-wide cancellation: SIGINT and SIGTERM set a flag that long operations poll.
// InstallInterruptHandlers() is called once by the CLI; libraries only read the flag.
#pragma once

namespace silo {

void InstallInterruptHandlers();
bool Interrupted();
// The signal that interrupted us (for the 128+N exit status), 0 when none.
int InterruptSignal();
// For tests and servers that trigger cancellation themselves.
void RequestInterrupt(int signal_number);

}  // namespace silo
