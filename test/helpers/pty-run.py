"""
Runs a command on a real pseudo-terminal, as a user at a terminal runs it: the pty is its
controlling terminal and its stdin, stdout and stderr. Once `interrupt_on` (a regular expression)
appears in what it printed, types Ctrl-C (the byte 0x03: the terminal, not this script, turns
it into SIGINT). Prints one JSON object: the exit code, the seconds from Ctrl-C to exit, what it
printed, and `stty -g` of the terminal before and after.

Used by test/cli-runtime.test.ts; the spec is JSON on stdin: {argv, env, cwd, interrupt_on, timeout}.
"""
import fcntl, json, os, pty, re, select, struct, subprocess, sys, termios, time

spec = json.load(sys.stdin)
master, slave = pty.openpty()
# A terminal of a usual size: a status line needs a width.
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 40, 160, 0, 0))

def stty():
    return subprocess.run(['stty', '-g'], stdin=slave, capture_output=True, text=True, check=True).stdout.strip()

def own_terminal():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

before = stty()
child = subprocess.Popen(spec['argv'], stdin=slave, stdout=slave, stderr=slave, env=spec['env'], cwd=spec.get('cwd'), preexec_fn=own_terminal)
output = b''
interrupted_at = None
deadline = time.time() + spec.get('timeout', 60)
pattern = re.compile(spec['interrupt_on']) if spec.get('interrupt_on') else None
while time.time() < deadline:
    ready, _, _ = select.select([master], [], [], 0.05)
    if ready:
        try:
            output += os.read(master, 65536)
        except OSError:
            break
    if pattern and interrupted_at is None and pattern.search(output.decode('utf-8', 'replace')):
        os.write(master, b'\x03')
        interrupted_at = time.time()
    if child.poll() is not None:
        break
if child.poll() is None:
    child.kill()
code = child.wait()
exited_at = time.time()
# What is still in the terminal's buffer after the exit.
while select.select([master], [], [], 0.1)[0]:
    try:
        chunk = os.read(master, 65536)
    except OSError:
        break
    if not chunk:
        break
    output += chunk
print(json.dumps({
    'code': code,
    'seconds_to_exit': None if interrupted_at is None else exited_at - interrupted_at,
    'output': output.decode('utf-8', 'replace'),
    'stty_before': before,
    'stty_after': stty(),
}))
