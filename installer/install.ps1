<#
.SYNOPSIS
Install sfxmatch for the current user on Windows. Safe to run again (it updates).

.DESCRIPTION
Steps: a Python virtual environment; torch 2.13.0 built for this machine (CUDA when nvidia-smi
sees a GPU, CPU otherwise); sfxmatch itself; the default model's weights; the background service
(a Task Scheduler task started at logon); the client discovery file the editor plugins read;
the DaVinci Resolve script. Every step prints what it does; -DryRun prints the steps and
changes nothing. The options mirror install.sh: -Prefix is --prefix, -NoModel is --no-model,
and so on.

.EXAMPLE
powershell -ExecutionPolicy Bypass -File installer\install.ps1
powershell -ExecutionPolicy Bypass -File installer\install.ps1 -NoModel -DryRun
#>
[CmdletBinding()]
param(
    # Put the environment in PREFIX\venv (default: %LOCALAPPDATA%\sfxmatch).
    [string]$Prefix = "",
    # The sfxmatch source to install (default: the checkout this script is in).
    [string]$Source = "",
    # The Python (3.11 or newer) to build the environment from (default: the py launcher).
    [string]$Python = "",
    # Which torch build: auto, cpu or cuda.
    [ValidateSet("auto", "cpu", "cuda")]
    [string]$Torch = "auto",
    # Install torch from this package index instead.
    [string]$TorchIndex = "",
    # Do not create or update the environment (use the one at -Prefix).
    [switch]$NoEnv,
    # Do not download model weights (3.4 to 9 GB).
    [switch]$NoModel,
    # The model whose weights to download (default: pe-av-base with a GPU, pe-av-small without).
    [string]$Model = "",
    # Do not install the background service.
    [switch]$NoService,
    # Do not write the client file or install the DaVinci Resolve script.
    [switch]$NoPlugins,
    # Print every action, change nothing.
    [switch]$DryRun
)

Set-StrictMode -Version 3
$ErrorActionPreference = "Stop"

$TorchVersion = "2.13.0"
$TorchIndexCpu = "https://download.pytorch.org/whl/cpu"
$TorchIndexCuda = "https://download.pytorch.org/whl/cu128"
$script:Warnings = 0

function Say([string]$Text) { Write-Host "[sfxmatch] $Text" }
function Warn([string]$Text) {
    Write-Warning "[sfxmatch] $Text"
    $script:Warnings += 1
}
function Fail([string]$Text) {
    Write-Host "[sfxmatch] error: $Text" -ForegroundColor Red
    exit 1
}

function Format-Command([string[]]$Command) {
    ($Command | ForEach-Object { if ($_ -match '[\s"]') { '"' + ($_ -replace '"', '\"') + '"' } else { $_ } }) -join " "
}

# Print a command, then run it unless this is a dry run. Returns $true when it succeeded.
function Invoke-Step([string[]]$Command) {
    Write-Host ("+ " + (Format-Command $Command))
    if ($DryRun) { return $true }
    $arguments = @()
    if ($Command.Length -gt 1) { $arguments = $Command[1..($Command.Length - 1)] }
    # Out-Host: the program's output goes to the screen, not into this function's result.
    & $Command[0] @arguments | Out-Host
    return ($LASTEXITCODE -eq 0)
}

function Invoke-Required([string[]]$Command) {
    if (-not (Invoke-Step $Command)) { Fail "failed: $(Format-Command $Command)" }
}

# --- where things go ----------------------------------------------------------------------------

if (-not $Source) { $Source = Split-Path -Parent $PSScriptRoot }
$DataDir = Join-Path $env:LOCALAPPDATA "sfxmatch"
if (-not $Prefix) { $Prefix = $DataDir }
$Venv = Join-Path $Prefix "venv"
$VenvPy = Join-Path $Venv "Scripts\python.exe"
$Exe = Join-Path $Venv "Scripts\sfxmatch.exe"
$ClientFile = Join-Path $env:APPDATA "sfxmatch\client.json"
$ResolveDir = Join-Path $env:APPDATA "Blackmagic Design\DaVinci Resolve\Support\Fusion\Scripts\Utility"

if ($DryRun) { Say "dry run: nothing will be changed" }
Say "platform: Windows"
Say "venv: $Venv"
Say "source: $Source"

# --- which torch --------------------------------------------------------------------------------
# sfxmatch pins torch==2.13.0 exactly. The CUDA wheels are large, so torch is installed first
# from PyTorch's own index: the CPU build (.../whl/cpu) without an NVIDIA GPU, the CUDA 12.8
# build (.../whl/cu128) when nvidia-smi lists one. Either wheel (2.13.0+cpu, 2.13.0+cu128)
# satisfies the ==2.13.0 pin, so installing sfxmatch afterwards keeps it.

function Get-GpuName {
    if (-not (Get-Command nvidia-smi -ErrorAction SilentlyContinue)) { return $null }
    try { $listing = & nvidia-smi -L 2>$null } catch { return $null }
    if ($LASTEXITCODE -ne 0) { return $null }
    $gpu = @($listing | Where-Object { $_ -match '^GPU ' })
    if ($gpu.Count -gt 0) { return $gpu[0] }
    return $null
}

$TorchKind = $Torch
$TorchReason = "chosen with -Torch"
if ($Torch -eq "auto") {
    $gpu = Get-GpuName
    if ($gpu) { $TorchKind = "cuda"; $TorchReason = "nvidia-smi: $gpu" }
    else { $TorchKind = "cpu"; $TorchReason = "no NVIDIA GPU found by nvidia-smi" }
}
if (-not $TorchIndex) {
    if ($TorchKind -eq "cuda") { $TorchIndex = $TorchIndexCuda } else { $TorchIndex = $TorchIndexCpu }
}
Say "torch: $TorchKind $TorchVersion from $TorchIndex ($TorchReason)"

# --- Python -------------------------------------------------------------------------------------

function Test-Python([string[]]$Command) {
    $arguments = @()
    if ($Command.Length -gt 1) { $arguments = $Command[1..($Command.Length - 1)] }
    try {
        $found = & $Command[0] @arguments -c "import sys; print(sys.executable) if sys.version_info >= (3, 11) else sys.exit(1)" 2>$null
    } catch { return $null }
    if ($LASTEXITCODE -eq 0 -and $found) { return ($found | Select-Object -Last 1) }
    return $null
}

function Find-Python {
    if ($Python) {
        $found = Test-Python @($Python)
        if (-not $found) { Fail "$Python is not Python 3.11 or newer" }
        return $found
    }
    # The py launcher knows every installed Python; "python" may be the Store's placeholder.
    foreach ($candidate in @(@("py", "-3.13"), @("py", "-3.12"), @("py", "-3.11"), @("py", "-3"), @("python"))) {
        if (Get-Command $candidate[0] -ErrorAction SilentlyContinue) {
            $found = Test-Python $candidate
            if ($found) { return $found }
        }
    }
    Fail "no Python 3.11 or newer found; install one from python.org (tick 'py launcher') or pass -Python"
}

$BasePy = Find-Python
Say "python: $BasePy"

# --- 1. the environment -------------------------------------------------------------------------

if (-not $NoEnv) {
    if (-not (Test-Path (Join-Path $Source "pyproject.toml"))) { Fail "$Source has no pyproject.toml; pass -Source" }
    if (Test-Path $VenvPy) {
        Say "updating the environment in $Venv"
    } else {
        if (-not $DryRun) { New-Item -ItemType Directory -Force -Path $Prefix | Out-Null }
        Invoke-Required @($BasePy, "-m", "venv", $Venv)
    }
    Invoke-Required @($VenvPy, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # Exactly this version, from the index chosen above (see "which torch").
    Invoke-Required @($VenvPy, "-m", "pip", "install", "--quiet", "--index-url", $TorchIndex, "torch==$TorchVersion")
    Invoke-Required @($VenvPy, "-m", "pip", "install", "--quiet", $Source)
} else {
    Say "skipping the environment (-NoEnv)"
    if (-not $DryRun -and -not (Test-Path $Exe)) { Fail "no sfxmatch at $Exe; run without -NoEnv first" }
}

# --- 2. the model's weights --------------------------------------------------------------------

if (-not $NoModel) {
    Say "model weights (3.4 GB for pe-av-small, 4.1 GB for pe-av-base; resumable, hash-checked)."
    Say "PE-AV is Apache-2.0; ImageBind (-Model imagebind-huge) is non-commercial only."
    # sfxmatch models fetch downloads into the user cache, checks each file's hash and resumes an
    # interrupted download on the next run.
    $fetch = @($Exe, "models", "fetch")
    if ($Model) { $fetch += $Model }
    if (-not (Invoke-Step $fetch)) {
        Warn "the weights could not be had (see above); run this script again to resume, or use -NoModel and set SFXMATCH_WEIGHTS to a folder holding them"
    }
} else {
    Say "skipping the model download (-NoModel)"
}

# --- 3. the background service ------------------------------------------------------------------

if (-not $NoService) {
    # A Task Scheduler task started at logon, restarted after failures; logs go to
    # %LOCALAPPDATA%\sfxmatch\Logs\daemon.log.
    if (-not (Invoke-Step @($Exe, "daemon", "install"))) {
        Warn "the background service could not be installed (see above); start it by hand with: `"$Exe`" daemon run"
    }
} else {
    Say "skipping the background service (-NoService)"
}

# --- 4. editor plugins --------------------------------------------------------------------------

if (-not $NoPlugins) {
    $content = @{ executable = $Exe } | ConvertTo-Json -Compress
    Say "write ${ClientFile}: $content"
    if (-not $DryRun) {
        New-Item -ItemType Directory -Force -Path (Split-Path -Parent $ClientFile) | Out-Null
        # UTF-8 without a byte-order mark: Python's json module rejects a BOM.
        [System.IO.File]::WriteAllText($ClientFile, $content + "`n", (New-Object System.Text.UTF8Encoding $false))
    }

    Say "DaVinci Resolve scripts folder: $ResolveDir"
    $scripts = @(Get-ChildItem -Path (Join-Path $Source "plugins\resolve") -Filter "*.py" -File -ErrorAction SilentlyContinue |
        Where-Object { $_.Name -ne "live_check.py" })
    if ($scripts.Count -eq 0) {
        Warn "no DaVinci Resolve scripts found in $(Join-Path $Source 'plugins\resolve')"
    } else {
        Write-Host ("+ mkdir " + $ResolveDir)
        if (-not $DryRun) { New-Item -ItemType Directory -Force -Path $ResolveDir | Out-Null }
        foreach ($file in $scripts) {
            $target = Join-Path $ResolveDir $file.Name
            Write-Host ("+ copy " + (Format-Command @($file.FullName, $target)))
            if (-not $DryRun) { Copy-Item -Force -LiteralPath $file.FullName -Destination $target }
        }
        Say "in Resolve: Workspace > Scripts > Utility"
    }
} else {
    Say "skipping the client file and the Resolve script (-NoPlugins)"
}

# --- checks -------------------------------------------------------------------------------------

if (-not (Get-Command ffmpeg -ErrorAction SilentlyContinue)) {
    # Not a failure: PyAV decodes most formats by itself.
    Say "note: ffmpeg is not installed; some compressed sound formats need it (winget install Gyan.FFmpeg)"
}

if ($script:Warnings -gt 0) {
    Say "done, with $($script:Warnings) warning(s) above"
    exit 1
}
Say "done: $Exe"
exit 0
