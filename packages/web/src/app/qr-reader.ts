/**
 * Reads a QR code from the camera's video, one frame at a time: with the browser's own
 * BarcodeDetector where it has one that reads QR codes (Chrome on Android and macOS, Safari),
 * else with jsQR (pure JavaScript: no worker, no WebAssembly, nothing the CSP forbids), loaded
 * the first time it is needed as its own chunk. Frames are scaled down to at most 800 pixels on
 * their long side first: a label fills much of the view, and jsQR's time grows with the pixels.
 */

/** The part of the Shape Detection API used here (not yet in TypeScript's DOM types). */
interface BarcodeDetectorClass {
  new (options: { formats: string[] }): { detect(source: CanvasImageSource): Promise<{ rawValue: string }[]> };
  getSupportedFormats(): Promise<string[]>;
}

export interface QrReader {
  /** The text of a QR code in the video's current frame, or null. */
  read(video: HTMLVideoElement): Promise<string | null>;
}

const MAX_SIDE = 800;

export async function qrReader(): Promise<QrReader> {
  const Detector = (window as unknown as { BarcodeDetector?: BarcodeDetectorClass }).BarcodeDetector;
  if (Detector && (await Detector.getSupportedFormats().catch((): string[] => [])).includes('qr_code')) {
    const detector = new Detector({ formats: ['qr_code'] });
    return { read: async (video) => (await detector.detect(video))[0]?.rawValue ?? null };
  }
  const { default: jsQR } = await import('jsqr');
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new Error('This browser cannot read images from the camera.');
  return {
    async read(video) {
      if (!video.videoWidth || !video.videoHeight) return null;
      const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const frame = context.getImageData(0, 0, canvas.width, canvas.height);
      return jsQR(frame.data, frame.width, frame.height, { inversionAttempts: 'dontInvert' })?.data ?? null;
    },
  };
}
