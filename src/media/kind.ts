import { stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';

import { DarkroomError } from '../errors.js';
import { PHOTO_EXTENSIONS } from '../train/photos.js';
import { VIDEO_EXTENSIONS } from '../train/video-anomaly.js';
import { probeVideo } from './video.js';

/**
 * Tells a photo from a video by extension, and for other names by trying sharp and then
 * ffprobe. Raises UNSUPPORTED_FORMAT when neither can read the file.
 */
export async function mediaKind(file: string): Promise<'photo' | 'video'> {
  const extension = path.extname(file).toLowerCase();
  if (PHOTO_EXTENSIONS.has(extension)) return 'photo';
  if (VIDEO_EXTENSIONS.has(extension)) return 'video';

  const info = await stat(file).catch((error: Error) => {
    throw new DarkroomError('INVALID_INPUT', `${file} cannot be read: ${error.message}`, { file, cause: error });
  });
  if (!info.isFile()) throw new DarkroomError('INVALID_INPUT', `${file} is not a file`, { file });
  if (await sharp(file).metadata().then(() => true, () => false)) return 'photo';
  if (await probeVideo(file).then(() => true, () => false)) return 'video';
  throw new DarkroomError('UNSUPPORTED_FORMAT', `${file} is neither a photo nor a video`, { file });
}
