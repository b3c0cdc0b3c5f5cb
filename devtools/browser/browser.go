// Package browser holds how Chromium runs for the browser tests and the screenshot generator.
package browser

import "github.com/chromedp/chromedp"

// Chromium is Debian's Chromium, which the browser tests and the screenshot generator drive.
const Chromium = "/usr/bin/chromium"

// Options are the flags Chromium always runs with: headless, no sandbox, nothing reaching the
// network by itself, a profile of its own, sRGB colours and no scroll bars, so pictures repeat.
func Options(execPath, userDataDir string, width, height int) []chromedp.ExecAllocatorOption {
	return []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(userDataDir),
		chromedp.WindowSize(width, height),
	}
}
