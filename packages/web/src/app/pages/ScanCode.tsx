/**
 * "Scan the QR code" on the Add a device page: a dialog with the back camera's picture
 * (getUserMedia, facingMode environment) that reads QR codes from it (../qr-reader.ts) until one
 * holds a claim code, either a box label's link on this platform (`…/app/add?product=…#code=…`)
 * or a bare code, and hands that code (and the label's product ID) to the page. Anything else is
 * refused with a reason and never opened: a link to another site or scheme (`javascript:`), or a
 * code that is not a claim code. A camera refused or missing is explained; the code can still be
 * typed. The camera is stopped as soon as the dialog closes, however it closes.
 */
import { useLayoutEffect, useRef, useState } from 'react';
import { readClaimLabel, type ClaimLabel } from '@bulwark/protocol';
import { Alert, Button, Dialog } from '../../kit';
import { qrReader } from '../qr-reader';

/** Between two frames read: enough for the reader to keep up on a slow phone. */
const FRAME_INTERVAL_MS = 150;

export function ScanCode(props: { onCode: (code: string, productId: string | null) => void }) {
  const [open, setOpen] = useState(false);
  return (
    <div>
      <Button variant="secondary" onClick={() => setOpen(true)}>
        Scan the QR code
      </Button>
      <Dialog title="Scan the QR code" open={open} onClose={() => setOpen(false)}>
        <Scanner
          onCode={(code, productId) => {
            setOpen(false);
            props.onCode(code, productId);
          }}
        />
        <div className="actions">
          <Button variant="secondary" onClick={() => setOpen(false)}>
            Close
          </Button>
        </div>
      </Dialog>
    </div>
  );
}

function Scanner(props: { onCode: (code: string, productId: string | null) => void }) {
  const video = useRef<HTMLVideoElement>(null);
  const onCode = useRef(props.onCode);
  onCode.current = props.onCode;
  const [scanning, setScanning] = useState(false);
  const [failure, setFailure] = useState<string | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);

  // A layout effect: its cleanup runs as the dialog leaves the page, so the camera stops with it. A
  // passive effect's cleanup runs after the browser has painted, and the camera stayed on a moment
  // after the dialog closed (companion-scan.test.ts saw a live track once the dialog was hidden).
  useLayoutEffect(() => {
    let stopped = false;
    let stream: MediaStream | null = null;
    const stop = () => stream?.getTracks().forEach((track) => track.stop());
    void (async () => {
      try {
        if (!navigator.mediaDevices?.getUserMedia) throw new DOMException('no camera API', 'NotSupportedError');
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
        if (stopped) return stop();
        const view = video.current!;
        view.srcObject = stream;
        await view.play();
        const reader = await qrReader();
        if (stopped) return;
        setScanning(true);
        while (!stopped) {
          const text = await reader.read(view).catch(() => null);
          if (stopped) return;
          if (text !== null) {
            const label = readClaimLabel(text, window.location.origin);
            if (label.kind === 'code') return onCode.current(label.code, label.productId);
            setRefusal(refusalOf(label));
          }
          await new Promise((resolve) => setTimeout(resolve, FRAME_INTERVAL_MS));
        }
      } catch (caught) {
        stop();
        if (!stopped) setFailure(cameraFailure(caught));
      }
    })();
    return () => {
      stopped = true;
      stop();
    };
  }, []);

  if (failure) return <Alert>{failure}</Alert>;
  return (
    <>
      <p role="status">{scanning ? 'Point the camera at the QR code on the box or under the device.' : 'Starting the camera…'}</p>
      {refusal && <Alert>{refusal}</Alert>}
      <video ref={video} className="scanner-view" muted playsInline aria-label="What the camera sees" />
    </>
  );
}

function refusalOf(label: Exclude<ClaimLabel, { kind: 'code' }>): string {
  if (label.kind === 'other_origin')
    return `This QR code leads somewhere else (${label.origin}), not to this app: it was not opened. Scan the code on the device's box or label, or type the code.`;
  return "This QR code holds no claim code. Scan the code on the device's box or label, or type the code.";
}

/** What to tell the consumer when the camera cannot be used; typing the code always works. */
function cameraFailure(caught: unknown): string {
  const name = caught instanceof DOMException ? caught.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError')
    return 'The camera is not allowed for this app. Allow it in your browser’s settings and try again, or close this and type the code.';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No camera was found. Close this and type the code instead.';
  if (name === 'NotReadableError') return 'The camera is busy in another app. Close that app and try again, or type the code.';
  if (name === 'NotSupportedError') return 'This browser cannot use the camera here. Close this and type the code instead.';
  return `The camera could not be started (${caught instanceof Error ? caught.message : String(caught)}). Close this and type the code.`;
}
