# antiphon and a BBC micro:bit v2: tilt it to play, it shows and sings the answer.
#
# Flash this file to a micro:bit v2 (python.microbit.org, or `uflash microbit.py`),
# plug it in with USB and run:
#
#     antiphon run -c examples/configs/microbit.toml
#
# (set [serial].port in that file: /dev/ttyACM0 on Linux and a Raspberry Pi,
# /dev/tty.usbmodem... on macOS).
#
# What goes over the USB serial line (115200 baud), one line per event:
#   micro:bit -> antiphon  "x,y,z\n"  the accelerometer, scaled to 0..1
#   antiphon -> micro:bit  "x,y,z\n"  what antiphon plays, 0..1, four decimals
#
# The micro:bit sends only when it is moved, so when you hold it still antiphon
# hears silence and, in call-and-response mode, answers. Its answer is drawn as
# three bars on the LEDs and played as a pitch on the speaker.
import music
from microbit import accelerometer, display, sleep, uart

SEND_EVERY_MS = 20  # at most 50 events a second
MOVEMENT = 0.03  # how far (0..1) a value must change to count as movement
ONE_G = 1024  # accelerometer units per g: +-1 g becomes 0..1

uart.init(baudrate=115200)  # the USB serial line


def scaled(reading):
    """An accelerometer reading (about -2048..2047) as 0..1, clamped."""
    value = (reading + ONE_G) / (2 * ONE_G)
    return min(1.0, max(0.0, value))


def show(values):
    """Three values as bars in columns 0, 2 and 4, and the first one as a pitch."""
    display.clear()
    for column, value in zip((0, 2, 4), values):
        height = round(value * 5)
        for row in range(5 - height, 5):
            display.set_pixel(column, row, 9)
    music.pitch(int(200 + 800 * values[0]), duration=60, wait=False)


def parse(line):
    try:
        values = [float(part) for part in line.strip().split(",")]
    except ValueError:
        return None  # half a line or noise: wait for the next one
    return values if len(values) == 3 else None


last_sent = [-1.0, -1.0, -1.0]
received = b""
while True:
    now = [scaled(v) for v in accelerometer.get_values()]
    if max(abs(a - b) for a, b in zip(now, last_sent)) > MOVEMENT:
        uart.write("{:.4f},{:.4f},{:.4f}\n".format(*now))
        last_sent = now
    if uart.any():
        received += uart.read() or b""
        *lines, received = received.split(b"\n")
        received = received[-64:]  # never let a line without an end grow
        for line in lines:
            values = parse(line.decode("ascii", "ignore"))
            if values:
                show(values)
    sleep(SEND_EVERY_MS)
